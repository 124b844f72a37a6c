"""The adversarial objectives, by hand; one-sided label smoothing and label flipping."""
import math

import torch
from torch.testing import assert_close

from gankit.losses import OBJECTIVES
from gankit.losses.adversarial import bce_d, bce_d_targets, hinge_d, lsgan_d, lsgan_g, minimax_g, nonsat_g, wasserstein_d

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
    # a flipped label costs softplus(10) ~ 10 nats, a kept one softplus(-10) ~ 4.5e-5: the mean loss is ~10 x the
    # flipped share. The seeded draws flip 2020 of the 20000 labels (10.1%)
    flipped, sp = 2020, lambda x: math.log1p(math.exp(x))
    assert_close(r, torch.tensor((flipped * sp(10.0) + (20000 - flipped) * sp(-10.0)) / 20000))
