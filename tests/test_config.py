import pytest
import yaml

from gankit.config import (
    TRANSLATION_MODELS,
    Config,
    build_config,
    config_from_dict,
    default_preset_for,
    parse_override,
    preset_names,
)
from gankit.errors import GankitError


def test_the_default_is_the_tuned_dcgan_on_fashion_mnist_for_ten_minutes():
    cfg = build_config()
    assert (cfg.preset, cfg.data.dataset, cfg.model.name, cfg.train.minutes) == ("dcgan-tuned", "fashion-mnist", "dcgan", 10)
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1) == (8.9e-4, 4.2e-4, 0.02)  # measured: README, Results
    assert default_preset_for("mnist") == default_preset_for("cifar10") == "dcgan"  # not measured there yet
    stacked = build_config(overrides=[{"data": {"dataset": "stacked-fashion-mnist"}}])  # measured: README, Results
    assert (stacked.preset, stacked.data.dataset, stacked.train.ema_decay) == ("dcgan-stacked", "stacked-fashion-mnist",
                                                                               0.9999)
    assert default_preset_for("stacked-mnist") == "dcgan"


def test_toy_datasets_default_to_the_toy_preset():
    assert default_preset_for("ring") == "toy"
    cfg = build_config(overrides=[{"data": {"dataset": "grid"}}])
    assert cfg.preset == "toy" and cfg.model.name == "gan-mlp" and cfg.data.dataset == "grid"


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates(name):
    image_to_image = name in TRANSLATION_MODELS  # these translate a folder the user gives
    cfg = build_config(name, overrides=[{"data": {"dataset": "some/folder"}}] if image_to_image else None)
    assert cfg.preset == name


def test_required_presets_ship():
    assert {"gan-mlp", "dcgan", "wgan", "wgan-gp", "hinge"} <= set(preset_names())


def test_textbook_presets():
    wgan = build_config("wgan")
    assert (wgan.loss.name, wgan.optim.optimizer, wgan.optim.n_critic, wgan.loss.clip) == ("wgan", "rmsprop", 5, 0.01)
    mlp = build_config("gan-mlp")
    assert mlp.model.g_hidden == [128, 256, 512, 1024] and mlp.model.d_hidden == [512, 256]


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(GankitError, match=r"unknown config key 'optim.lr'.*lr_g"):
        build_config(overrides=[{"optim": {"lr": 1e-3}}])


def test_unknown_section():
    with pytest.raises(GankitError, match="unknown config section 'optimizer'"):
        build_config(overrides=[{"optimizer": {}}])


def test_bad_choice_lists_the_allowed_values():
    with pytest.raises(GankitError, match=r"bad value 'adamw' for 'optim.optimizer'; allowed: adam, rmsprop, sgd"):
        build_config(overrides=[{"optim": {"optimizer": "adamw"}}])


def test_bad_type_and_range():
    with pytest.raises(GankitError, match="expected a whole number"):
        build_config(overrides=[{"train": {"batch_size": "big"}}])
    with pytest.raises(GankitError, match="must be positive"):
        build_config(overrides=[{"train": {"batch_size": 0}}])


def test_a_snapshot_past_the_budget_is_refused_not_silently_skipped():
    with pytest.raises(GankitError, match="train.snapshot_minutes 12 is not before train.minutes 10"):
        build_config(overrides=[{"train": {"minutes": 10, "snapshot_minutes": [2, 12]}}])
    assert build_config(overrides=[{"train": {"minutes": 10, "snapshot_minutes": [2, 5]}}]).train.snapshot_minutes == [2, 5]


def test_unknown_preset():
    with pytest.raises(GankitError, match="unknown preset 'dcgna'; available: .*dcgan"):
        build_config("dcgna")


def test_override_parsing_uses_yaml_types():
    assert build_config(overrides=[parse_override("optim.lr_g=1e-4")]).optim.lr_g == 1e-4
    assert parse_override("model.g_hidden=[32, 64]") == {"model": {"g_hidden": [32, 64]}}
    with pytest.raises(GankitError, match="SECTION.KEY=VALUE"):
        parse_override("lr_g=1")


def test_precedence_preset_file_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"preset": "hinge", "optim": {"lr_g": 1e-3}, "train": {"seed": 7}}))
    cfg = build_config(config_file=str(f), overrides=[{"train": {"seed": 9}}])
    assert (cfg.loss.name, cfg.optim.lr_g, cfg.train.seed) == ("hinge", 1e-3, 9)


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim: [unclosed")
    with pytest.raises(GankitError, match="not valid YAML"):
        build_config(config_file=str(f))
    with pytest.raises(GankitError, match="not found"):
        build_config(config_file=str(tmp_path / "missing.yaml"))


def test_saved_config_round_trips():
    cfg = build_config("wgan-gp")
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg and isinstance(again, Config)
