"""One discriminator update and one generator update. They take explicit objects and return detached
tensors (read as numbers only when the loop logs them, so a GPU is never synchronised per step).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dataclasses import dataclass
from typing import Callable, Optional

from ..losses import Objective, clip_weights_, gradient_penalty, r1_penalty

View = Optional[Callable[[Tensor], Tensor]]  # what D sees of a batch (DiffAugment, instance noise, packing)


@dataclass
class Extras:
    """The techniques acting inside a step (all off by default)."""
    view: View = None
    r1_gamma: float = 0.0
    replay: Optional[nn.Module] = None  # ReplayBuffer: old fakes mixed into D's fake batch
    ha_d: Optional[nn.Module] = None  # HistoricalAverage of D's weights
    ha_g: Optional[nn.Module] = None  # HistoricalAverage of G's weights
    ha_weight: float = 0.0
    feature_matching: str = "off"  # off | only | add


NO_EXTRAS = Extras()


def _seen(x: Tensor, e: Extras) -> Tensor:
    return e.view(x) if e.view is not None else x


def sample_z(n: int, dim: int, dist: str, device: torch.device | str = "cpu",
             generator: torch.Generator | None = None) -> Tensor:
    """[n, dim] latent codes from N(0, I) or U(-1, 1)."""
    if dist == "uniform":
        return torch.rand(n, dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, dim, device=device, generator=generator)


def grad_norm(net: nn.Module) -> Tensor:
    """Global L2 norm of a network's gradients (a diagnostic: vanishing or exploding updates)."""
    grads = [p.grad.detach() for p in net.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def d_output(logits: Tensor, obj: Objective) -> Tensor:
    """Mean D output to report: a probability for BCE objectives, the raw critic value otherwise."""
    return (torch.sigmoid(logits) if obj.probabilities else logits).mean()


def d_step(G: nn.Module, D: nn.Module, opt_d: torch.optim.Optimizer, real: Tensor, z: Tensor,
           obj: Objective, gp_lambda: float = 10.0, clip: float = 0.01, e: Extras = NO_EXTRAS) -> dict[str, Tensor]:
    """One D update on a real batch and G(z). Returns detached scalars for the log."""
    with torch.no_grad():
        fake = G(z)
    if e.replay is not None:
        fake = e.replay.mix(fake)
    real, fake = _seen(real, e), _seen(fake, e)  # [N/pack, ...] as D sees them
    real_out, fake_out = D(real), D(fake)  # [N], [N]
    loss_real, loss_fake = obj.d(real_out, fake_out)
    loss = loss_real + loss_fake
    stats = {"loss_d_real": loss_real, "loss_d_fake": loss_fake}
    if obj.gradient_penalty:
        gp = gradient_penalty(D, real, fake)
        loss = loss + gp_lambda * gp
        stats["gp"] = gp
    if e.r1_gamma > 0:
        r1 = r1_penalty(D, real)
        loss = loss + 0.5 * e.r1_gamma * r1
        stats["r1"] = r1
    if e.ha_d is not None:
        ha = e.ha_d.penalty()
        loss = loss + e.ha_weight * ha
        stats["ha_d"] = ha
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    stats["grad_d"] = grad_norm(D)
    opt_d.step()
    if e.ha_d is not None:
        e.ha_d.update()
    if obj.clip_weights:
        clip_weights_(D, clip)
    stats.update(loss_d=loss, d_real=d_output(real_out, obj), d_fake=d_output(fake_out, obj))
    return {k: v.detach() for k, v in stats.items()}


def g_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, z: Tensor,
           obj: Objective, e: Extras = NO_EXTRAS, real: Optional[Tensor] = None) -> dict[str, Tensor]:
    """One G update through a D whose parameters are left untouched."""
    D.requires_grad_(False)
    fake = _seen(G(z), e)
    stats = {}
    if e.feature_matching == "only":  # feature matching alone: G's objective is D's features, not its output
        with torch.no_grad():
            fake_out = D(fake)
        loss = fake.new_zeros(())
    else:
        fake_out = D(fake)
        loss = obj.g(fake_out)
    if e.feature_matching != "off":  # Salimans et al. 2016: || E f(x) - E f(G(z)) ||^2 on D's features
        with torch.no_grad():
            f_real = D.features(_seen(real, e)).flatten(1).mean(0)
        fm = (f_real - D.features(fake).flatten(1).mean(0)).pow(2).sum()
        loss = loss + fm
        stats["fm"] = fm.detach()
    if e.ha_g is not None:
        ha = e.ha_g.penalty()
        loss = loss + e.ha_weight * ha
        stats["ha_g"] = ha.detach()
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    norm = grad_norm(G)
    opt_g.step()
    if e.ha_g is not None:
        e.ha_g.update()
    D.requires_grad_(True)
    return {"loss_g": loss.detach(), "d_fake_g": d_output(fake_out, obj).detach(), "grad_g": norm, **stats}
