import math

import torch
from torch import nn
from torch.testing import assert_close

from gankit.losses import OBJECTIVES, clip_weights_, gradient_penalty
from gankit.losses.adversarial import bce_d, hinge_d, lsgan_d, lsgan_g, minimax_g, nonsat_g, wasserstein_d

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_bce_d_by_hand():
    r, f = bce_d(REAL, FAKE)
    assert_close(r, torch.tensor((-math.log(sig(2.0)) - math.log(sig(-1.0))) / 2))
    assert_close(f, torch.tensor((-math.log(1 - sig(0.5)) - math.log(1 - sig(-3.0))) / 2))


def test_minimax_and_nonsaturating_g_by_hand():
    assert_close(minimax_g(FAKE), torch.tensor((math.log(1 - sig(0.5)) + math.log(1 - sig(-3.0))) / 2))
    assert_close(nonsat_g(FAKE), torch.tensor((-math.log(sig(0.5)) - math.log(sig(-3.0))) / 2))


def test_least_squares_by_hand():
    r, f = lsgan_d(REAL, FAKE)
    assert_close(r, torch.tensor(0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2))
    assert_close(f, torch.tensor(0.5 * (0.5 ** 2 + 3.0 ** 2) / 2))
    assert_close(lsgan_g(FAKE), torch.tensor(0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2))


def test_wasserstein_by_hand():
    r, f = wasserstein_d(REAL, FAKE)
    assert_close(r, torch.tensor(-0.5))
    assert_close(f, torch.tensor(-1.25))
    assert_close(OBJECTIVES.get("wgan").g(FAKE), torch.tensor(1.25))


def test_hinge_by_hand():
    r, f = hinge_d(REAL, FAKE)
    assert_close(r, torch.tensor((0.0 + 2.0) / 2))  # relu(1-2)=0, relu(1+1)=2
    assert_close(f, torch.tensor((1.5 + 0.0) / 2))  # relu(1+0.5)=1.5, relu(1-3)=0
    assert_close(OBJECTIVES.get("hinge").g(FAKE), torch.tensor(1.25))


def test_objective_flags():
    assert OBJECTIVES.get("wgan").clip_weights and not OBJECTIVES.get("wgan").gradient_penalty
    assert OBJECTIVES.get("wgan-gp").gradient_penalty
    assert OBJECTIVES.get("nonsat").probabilities and not OBJECTIVES.get("hinge").probabilities


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w . x has gradient w everywhere, so the penalty is (||w|| - 1)^2 whatever the interpolate
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # ||w|| = 5
    real, fake = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)
    assert_close(gradient_penalty(D, real, fake), torch.tensor(16.0))


def test_gradient_penalty_is_differentiable_wrt_critic():
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    gp = gradient_penalty(D, torch.randn(8, 4), torch.randn(8, 4))
    gp.backward()
    assert D[0 + 1].weight.grad is not None and D[1].weight.grad.abs().sum() > 0


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
