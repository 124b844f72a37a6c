"""Gradient penalties (WGAN-GP, R1) and weight clipping."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.losses import clip_weights_, gradient_penalty, r1_penalty


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w . x has gradient w everywhere, so the penalty is (||w|| - 1)^2 whatever the interpolate
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # ||w|| = 5
    real, fake = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)
    assert_close(gradient_penalty(D, real, fake), torch.tensor(16.0))


def test_gradient_penalty_is_differentiable_wrt_critic():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(8, 4), torch.randn(8, 4)

    def gp():
        torch.manual_seed(1)  # the same interpolates at every call
        return gradient_penalty(D, real, fake)

    gp().backward()
    assert D[0 + 1].weight.grad is not None
    # the gradient through the input gradient is the penalty's own slope: a central difference along one weight
    h, w = 1e-2, D[1].weight
    with torch.no_grad():
        w[3, 2] += h
    up = gp().item()
    with torch.no_grad():
        w[3, 2] -= 2 * h
    down = gp().item()
    assert w.grad[3, 2].item() == pytest.approx((up - down) / (2 * h), rel=1e-2)
    assert w.grad[3, 2].item() == pytest.approx(0.2778, rel=1e-3)  # the seeded value, far from 0


def test_weight_clipping():
    D = nn.Linear(3, 2)
    with torch.no_grad():
        D.weight.fill_(0.5)
        D.bias.fill_(-0.7)
    clip_weights_(D, 0.01)
    assert D.weight.max() == 0.01 and D.bias.min() == -0.01


def test_gradient_penalties_stay_float32_under_autocast():
    """Mixed precision must not round the input gradient that WGAN-GP and R1 constrain."""
    from gankit.losses import gradient_penalty, r1_penalty

    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    torch.manual_seed(1)
    gp32, r1_32 = gradient_penalty(D, real, fake), r1_penalty(D, real)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp, r1 = gradient_penalty(D, real, fake), r1_penalty(D, real)
    assert gp.dtype == torch.float32 and r1.dtype == torch.float32
    torch.testing.assert_close(gp, gp32)  # D's arithmetic was not done in bf16
    torch.testing.assert_close(r1, r1_32)


def test_r1_of_a_linear_critic():
    D = nn.Sequential(nn.Flatten(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))
    assert_close(r1_penalty(D, torch.randn(5, 3)), torch.tensor(9.0))  # ||w||^2
