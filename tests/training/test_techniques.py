"""The stabilising techniques (config section `tech`, and virtual batch norm)."""
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.config import TechConfig, build_config
from gankit.errors import GankitError
from gankit.training.techniques import apply_spectral_norm, cutout, gate_closed, make_view, translation

from ..conftest import read_log, tiny_config, train_tiny


def test_spectral_norm_bounds_each_layer():
    D = apply_spectral_norm(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)))
    D.train()
    for _ in range(20):  # power iterations converge while training
        D(torch.randn(4, 8))
    D.eval()
    for m in D:
        if isinstance(m, nn.Linear):
            assert torch.linalg.matrix_norm(m.weight.detach(), ord=2) == pytest.approx(1.0, abs=0.05)


def test_translation_shifts_and_pads_with_zeros():
    x = torch.ones(64, 1, 16, 16)
    y = translation(x)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 1.0}
    zero_rows = (y == 0).flatten(1).sum(1)
    assert (zero_rows > 0).any() and (zero_rows <= 16 * 16 - 14 * 14).all()  # at most 2 px each way


def test_cutout_zeroes_one_square():
    y = cutout(torch.ones(32, 3, 16, 16))
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 8 * 8).all() and (zeros == 64).any()
    assert torch.equal(y[:, 0], y[:, 2])  # the same square in every channel


def test_instance_noise_anneals_to_zero():
    tech = TechConfig(instance_noise=0.5, instance_noise_steps=100)
    x = torch.zeros(10000)
    assert make_view(tech, 0)(x).std().item() == pytest.approx(0.5, rel=0.05)
    assert make_view(tech, 50)(x).std().item() == pytest.approx(0.25, rel=0.05)
    assert make_view(tech, 100) is None and make_view(TechConfig(), 0) is None


def test_generator_gate():
    tech = TechConfig(g_gate=0.5)
    assert gate_closed(tech, {"d_real": torch.tensor(0.9), "d_fake": torch.tensor(0.1)})
    assert not gate_closed(tech, {"d_real": torch.tensor(0.6), "d_fake": torch.tensor(0.4)})
    assert not gate_closed(TechConfig(), {"d_real": torch.tensor(1.0), "d_fake": torch.tensor(0.0)})


def test_validation_of_technique_switches():
    with pytest.raises(GankitError, match="need a BCE loss"):
        build_config("wgan-gp", overrides=[{"tech": {"label_smoothing": 0.9}}])
    with pytest.raises(GankitError, match="unknown DiffAugment policy 'rotate'"):
        build_config(overrides=[{"tech": {"diffaugment": "color,rotate"}}])


def test_all_switches_train_together_and_the_gate_is_logged(tmp_path, idx_dir):

    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=6,
                      tech={"label_smoothing": 0.9, "label_flip": 0.05, "instance_noise": 0.1,
                            "spectral_norm": True, "r1_gamma": 1.0, "g_gate": -1.0,
                            "diffaugment": "translation,cutout,color"},
                      train={"ema_decay": 0.9})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    rows = read_log(run)
    # a gate at -1 is always closed, but it closes for at most g_gate_max_skips (5) G updates in a row:
    # steps 1-5 skip G, step 6 updates it (a gate that never reopens would freeze G for good)
    assert [r["g_skipped"] for r in rows] == [1, 2, 3, 4, 5, 5]
    assert "r1" in rows[-1] and all(math.isfinite(r["loss_d"]) for r in rows)
    gankit.sample(run, 4, tmp_path / "s.png")  # G rebuilds without D's spectral-norm parametrization


def test_pacgan_packs_samples_into_one_d_input(tmp_path):
    from gankit.training.techniques import pack

    x = torch.arange(4 * 2.0).view(4, 2)
    assert torch.equal(pack(x, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    img = torch.randn(6, 1, 8, 8)
    assert torch.equal(pack(img, 3)[1, 2], img[5, 0])  # [N/m, m*C, H, W]
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", tech={"pack": 4})
    from gankit.training.gan import GanRecipe
    s = GanRecipe(cfg)
    assert s.D.net[1].in_features == 2 * 4
    assert gankit.train(cfg, quiet=True)["steps"] == 4


def test_experience_replay_mixes_old_fakes():
    from gankit.training.techniques import ReplayBuffer

    buf = ReplayBuffer(size=8, ratio=0.5, shape=(2,))
    first = torch.ones(4, 2)
    assert torch.equal(buf.mix(first)[0], first)  # empty buffer: nothing to replay yet
    second = buf.mix(torch.zeros(4, 2))[0]
    assert torch.equal(second[:2], torch.ones(2, 2)) and torch.equal(second[2:], torch.zeros(2, 2))
    assert int(buf.count) == 8


def test_historical_averaging_penalises_distance_to_the_mean_of_past_weights():
    from gankit.training.techniques import HistoricalAverage

    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ha = HistoricalAverage(net)
    assert ha.penalty().item() == 0.0
    with torch.no_grad():
        net.weight.fill_(3.0)
    ha.update()  # mean of past weights (1, 3) = 2
    assert ha.averages()[0].item() == 2.0 and ha.penalty().item() == 1.0


def test_virtual_batchnorm_makes_each_sample_independent_of_its_batch(tmp_path, idx_dir):
    from gankit.config import ModelConfig
    from gankit.models import build_models
    from gankit.models.layers import VirtualBatchNorm

    torch.manual_seed(0)
    cfg = ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8)
    plain, _ = build_models(cfg, (1, 28, 28))
    torch.manual_seed(0)
    G, _ = build_models(ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8, virtual_batchnorm=True,
                                    virtual_batch_size=16), (1, 28, 28))
    assert any(isinstance(m, VirtualBatchNorm) for m in G.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    z = torch.randn(6, 8)
    # with BatchNorm an image depends on its batch companions; with VBN it does not (train mode both)
    assert not torch.allclose(plain(z)[:1], plain(torch.cat([z[:1], -z[1:]]))[:1], atol=1e-4)
    assert_close(G(z)[:1], G(torch.cat([z[:1], -z[1:]]))[:1])
    assert_close(G(z)[:1], G(z[:1]))
    # the reference statistics come from the reference batch: new reference codes change the output
    before = G(z[:1]).detach()
    G.ref_z.normal_()
    assert not torch.allclose(G(z[:1]), before, atol=1e-4)
    # a run with it trains, saves its reference codes and samples again
    run = train_tiny("dcgan", tmp_path / "run", data_dir=idx_dir, model={"virtual_batchnorm": True, "virtual_batch_size": 8})
    gankit.sample(run, 4, tmp_path / "s.png")
    mlp = tiny_config("gan-mlp", tmp_path / "toy", dataset="ring", model={"virtual_batchnorm": True})
    gankit.train(mlp, quiet=True)


def test_virtual_batchnorm_needs_batchnorm_in_g():
    from gankit.config import ModelConfig
    from gankit.models import build_models

    with pytest.raises(GankitError, match="g_batchnorm=true"):
        build_models(ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8, g_batchnorm=False,
                                 virtual_batchnorm=True), (1, 28, 28))


def test_unrolled_gan_trains_with_spectral_norm_and_batchnorm(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, tech={"unrolled_steps": 2, "spectral_norm": True})
    assert gankit.train(cfg, quiet=True)["steps"] == 4
