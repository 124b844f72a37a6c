"""The search space file of `gankit tune`: read safely, every key and range checked before any trial runs."""
from __future__ import annotations

import pytest

from gankit.cli import main
from gankit.config import build_config
from gankit.tune.space import load_space, suggest

from .conftest import TINY_ARGS

BAD = {  # space file -> what its one-line error must name
    "optim.lr_x: {log_uniform: [1.0e-5, 1.0e-3]}": "optim.lr_x",
    "optim.lr_g: {loguniform: [1.0e-5, 1.0e-3]}": "log_uniform",
    "optim.lr_g: {log_uniform: [0, 1.0e-3]}": "positive",
    "optim.beta1: {uniform: [0.9, 0.1]}": "below",
    "optim.beta1: {uniform: [0.1, 1.5]}": "optim.beta1",  # the config refuses beta1 = 1.5
    "model.g_width: {uniform: [16, 64]}": "whole number",  # a float range for an int key
    "model.g_width: {int: [16.5, 64]}": "whole number",
    "loss.name: {categorical: [nonsat, wgan2]}": "wgan2",
    "loss.name: {categorical: []}": "loss.name",
    "train.minutes: {uniform: [1, 2]}": "set by gankit tune",
    "lr_g: {uniform: [0.1, 0.2]}": "SECTION.KEY",
    "- optim.lr_g": "must map config keys",
    "optim.lr_g: [1.0e-5, 1.0e-3]": "one distribution",
    "a: &a [*a]": "not valid YAML",
}


@pytest.mark.parametrize("text, named", BAD.items(), ids=list(BAD.values()))
def test_a_bad_space_file_is_one_line_naming_the_problem(tmp_path, capsys, text, named):
    space = tmp_path / "space.yaml"
    space.write_text(text + "\n")
    out = tmp_path / "tune"
    rc = main(["tune", "--preset", "toy", "--dataset", "ring", "--space", str(space), "--trials", "2",
               "--minutes", "1", "--out", str(out), *TINY_ARGS])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"gankit: error: space file '{space}'") and named in err, err
    assert not out.exists()  # refused before any folder or study is made


def test_missing_space_file_and_metric_that_does_not_fit(tmp_path, capsys):
    rc = main(["tune", "--preset", "toy", "--dataset", "ring", "--space", str(tmp_path / "no.yaml"), "--trials", "1",
               "--minutes", "1", "--out", str(tmp_path / "t")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    (tmp_path / "s.yaml").write_text("optim.lr_g: {uniform: [1.0e-4, 1.0e-3]}\n")
    rc = main(["tune", "--preset", "toy", "--dataset", "ring", "--space", str(tmp_path / "s.yaml"), "--trials", "1",
               "--minutes", "1", "--metric", "fid", "--out", str(tmp_path / "t")])
    assert rc == 2 and "--metric modes" in capsys.readouterr().err


def test_a_space_gives_each_trial_values_of_the_keys_types(tmp_path):
    import optuna
    import yaml

    base = build_config("toy", overrides=[{"data": {"dataset": "ring"}}])
    space_file = {"optim.lr_g": {"log_uniform": ["1e-5", 1.0e-3]}, "model.latent_dim": {"int": [2, 8]},
                  "loss.name": {"categorical": ["nonsat", "hinge"]}, "optim.beta1": {"uniform": [0.0, 0.9]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(space_file, sort_keys=False))
    params = load_space(path, base)
    assert [p.key for p in params] == list(space_file)
    assert params[0].args == (1e-5, 1e-3)  # YAML 1.1 reads 1e-5 as text: taken as the number
    over = suggest(params, optuna.trial.FixedTrial({"optim.lr_g": 2e-4, "model.latent_dim": 3, "loss.name": "hinge",
                                                    "optim.beta1": 0.5}))
    assert over == {"optim": {"lr_g": 2e-4, "beta1": 0.5}, "model": {"latent_dim": 3}, "loss": {"name": "hinge"}}
    cfg = build_config("toy", overrides=[{"data": {"dataset": "ring"}}, over])
    assert (cfg.model.latent_dim, cfg.loss.name) == (3, "hinge")
