"""The relativistic pairing loss and R2 (issue 14, items 1-2), against hand computations."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.losses import OBJECTIVES
from gankit.training.steps import Batch, Extras, d_step, g_step
from tests.conftest import tiny_config


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_rpgan_pairs_each_fake_with_its_real_example():
    rp = OBJECTIVES.get("rpgan")
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    d_loss, rest = rp.d(real, fake)
    # D: softplus(-(D(x) - D(G(z)))) per pair: softplus(-1.5) and softplus(2.0), averaged
    assert_close(d_loss, torch.tensor((softplus(-1.5) + softplus(2.0)) / 2)) and float(rest) == 0.0
    # G: softplus(-(D(G(z)) - D(x))): softplus(1.5) and softplus(-2.0), averaged
    assert_close(rp.g(fake, real), torch.tensor((softplus(1.5) + softplus(-2.0)) / 2))
    assert rp.paired and not OBJECTIVES.get("nonsat").paired


def _nets():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    return G, D


def test_r2_is_the_squared_gradient_norm_on_the_fakes_and_reaches_d_only():
    G, D = _nets()
    batch = Batch(torch.randn(16, 2), torch.randn(16, 4))
    with torch.no_grad():
        fake = G(batch.z)
    x = fake.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    expected = grad.pow(2).sum(1).mean()  # E ||grad_x D(G(z))||^2 by hand
    opt_d = torch.optim.SGD(D.parameters(), lr=0.0)
    stats = d_step(G, D, opt_d, batch, OBJECTIVES.get("rpgan"), Extras(r2_gamma=1.0))
    assert_close(stats["r2"], expected)
    assert all(p.grad is None for p in G.parameters())  # D's step never sends a gradient into G
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())


def test_the_g_step_of_rpgan_sees_the_real_batch():
    G, D = _nets()
    opt_g = torch.optim.SGD(G.parameters(), lr=0.0)
    z, real = torch.randn(16, 4), torch.randn(16, 2)
    stats = g_step(G, D, opt_g, Batch(real, z), OBJECTIVES.get("rpgan"))
    with torch.no_grad():
        expected = torch.nn.functional.softplus(D(real) - D(G(z))).mean()
    assert_close(stats["loss_g"], expected)


def test_rpgan_with_r1_and_r2_trains_on_the_ring(tmp_path):
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=6, loss={"name": "rpgan"},
                      tech={"r1_gamma": 0.1, "r2_gamma": 0.1})
    run = gankit.train(cfg, quiet=True)["run"]
    import json
    from pathlib import Path

    rows = [json.loads(r) for r in (Path(run) / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"r1", "r2", "loss_g"} <= set(rows[-1])
