"""Adversarial objectives as small pure functions of D's logits.

D losses return (real_part, fake_part): the loop logs both and optimises their sum.
real, fake: [N] raw outputs of D (logits or critic values); fake is detached for the D step.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import Registry


# --- BCE family (Goodfellow et al. 2014). softplus(-x) = -log sigmoid(x), softplus(x) = -log(1 - sigmoid(x))
def bce_d(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """-log D(x) and -log(1 - D(G(z))), averaged."""
    return F.softplus(-real).mean(), F.softplus(fake).mean()


def bce_d_targets(real: Tensor, fake: Tensor, real_target: float = 1.0, flip: float = 0.0,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BCE for D with one-sided label smoothing (real target `real_target`, e.g. 0.9; fakes stay 0) and
    label flipping (each label swapped with probability `flip`)."""
    t_real = torch.full_like(real, real_target)
    t_fake = torch.zeros_like(fake)
    if flip > 0:
        t_real = torch.where(torch.rand(real.shape, device=real.device, generator=generator) < flip, 0.0, t_real)
        t_fake = torch.where(torch.rand(fake.shape, device=fake.device, generator=generator) < flip, 1.0, t_fake)
    return (F.binary_cross_entropy_with_logits(real, t_real), F.binary_cross_entropy_with_logits(fake, t_fake))


def minimax_g(fake: Tensor) -> Tensor:
    """The original minimax G loss: minimise log(1 - D(G(z))) (saturates when D wins)."""
    return -F.softplus(fake).mean()


def nonsat_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss: minimise -log D(G(z))."""
    return F.softplus(-fake).mean()


# --- least squares (Mao et al. 2017), targets a=0, b=c=1
def lsgan_d(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    return 0.5 * (real - 1).pow(2).mean(), 0.5 * fake.pow(2).mean()


def lsgan_g(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


# --- Wasserstein critic (Arjovsky et al. 2017); WGAN clips weights, WGAN-GP adds a gradient penalty
def wasserstein_d(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    return -real.mean(), fake.mean()


def wasserstein_g(fake: Tensor) -> Tensor:
    return -fake.mean()


# --- hinge (Lim & Ye 2017; Miyato et al. 2018)
def hinge_d(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    return F.relu(1 - real).mean(), F.relu(1 + fake).mean()


# --- relativistic pairing (Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al. 2024): each fake is judged
# against the real example it is paired with
def rpgan_d(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """softplus(-(D(x) - D(G(z)))) over the pairs. The pair is one term: it is logged as the real part."""
    return F.softplus(fake - real).mean(), real.new_zeros(())


def rpgan_g(fake: Tensor, real: Tensor) -> Tensor:
    """softplus(-(D(G(z)) - D(x))): G needs the real batch's logits too."""
    return F.softplus(real - fake).mean()


@dataclass(frozen=True)
class Objective:
    """How D and G are scored, and what the loop must add around the D step."""
    d: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    g: Callable[[Tensor], Tensor]
    probabilities: bool  # D's outputs are logits of a probability (log sigmoid(x) as D(x))
    clip_weights: bool = False  # WGAN: clip D's weights after each D step
    gradient_penalty: bool = False  # WGAN-GP: penalise ||grad D|| away from 1 on interpolates
    paired: bool = False  # G's loss takes the real batch's logits too: g(fake, real)


def objective_of(name: str, label_smoothing: float = 1.0, label_flip: float = 0.0) -> Objective:
    """The registered objective `name`; a BCE objective's D loss takes the real target (one-sided label
    smoothing) and the flip probability as parameters when they are not the defaults."""
    obj = OBJECTIVES.get(name)
    if label_smoothing == 1.0 and label_flip == 0.0:
        return obj
    return dataclasses.replace(obj, d=functools.partial(bce_d_targets, real_target=label_smoothing, flip=label_flip))


OBJECTIVES: Registry[Objective] = Registry("loss")
OBJECTIVES.register("minimax")(Objective(bce_d, minimax_g, probabilities=True))
OBJECTIVES.register("nonsat")(Objective(bce_d, nonsat_g, probabilities=True))
OBJECTIVES.register("lsgan")(Objective(lsgan_d, lsgan_g, probabilities=False))
OBJECTIVES.register("wgan")(Objective(wasserstein_d, wasserstein_g, probabilities=False, clip_weights=True))
OBJECTIVES.register("wgan-gp")(Objective(wasserstein_d, wasserstein_g, probabilities=False, gradient_penalty=True))
OBJECTIVES.register("hinge")(Objective(hinge_d, wasserstein_g, probabilities=False))
OBJECTIVES.register("rpgan")(Objective(rpgan_d, rpgan_g, probabilities=False, paired=True))
