import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.config import TechConfig, build_config
from gankit.errors import GankitError
from gankit.losses import r1_penalty
from gankit.losses.adversarial import bce_d, bce_d_targets
from gankit.training.techniques import apply_spectral_norm, cutout, gate_closed, make_view, translation

from .conftest import tiny_config


def test_one_sided_label_smoothing_by_hand():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    r, f = bce_d_targets(real, fake, real_target=0.9)
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert_close(r, torch.tensor(-(0.9 * math.log(s(2.0)) + 0.1 * math.log(1 - s(2.0)))))
    assert_close(f, torch.tensor(-math.log(1 - s(-1.0))))  # one-sided: fakes keep target 0
    assert_close(bce_d_targets(real, fake), bce_d(real, fake))  # no smoothing = plain BCE


def test_label_flipping_flips_about_the_asked_share():
    real = torch.full((20000,), 10.0)  # D is sure these are real
    r, _ = bce_d_targets(real, torch.zeros(1), flip=0.1, generator=torch.Generator().manual_seed(0))
    # a flipped label costs ~10 nats, a kept one ~0: the mean loss is ~10 x the flipped share
    assert 0.09 < r.item() / 10 < 0.11


def test_r1_of_a_linear_critic():
    D = nn.Sequential(nn.Flatten(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))
    assert_close(r1_penalty(D, torch.randn(5, 3)), torch.tensor(9.0))  # ||w||^2


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
    import json
    from pathlib import Path

    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=6,
                      tech={"label_smoothing": 0.9, "label_flip": 0.05, "instance_noise": 0.1,
                            "spectral_norm": True, "r1_gamma": 1.0, "g_gate": -1.0,
                            "diffaugment": "translation,cutout,color"},
                      train={"ema_decay": 0.9})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["g_skipped"] == 6  # a gate at -1 is always closed: G never moved
    assert "r1" in rows[-1] and all(math.isfinite(r["loss_d"]) for r in rows)
    gankit.sample(run, 4, tmp_path / "s.png")  # G rebuilds without D's spectral-norm parametrization
