"""One discriminator update and one generator update. They take explicit objects and return detached
tensors (read as numbers only when the loop logs them, so a GPU is never synchronised per step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..conditioning import NONE, Unlabelled
from ..losses import Objective, clip_weights_, gradient_penalty, r1_penalty
from .optimizers import rule_of
from .precision import FP32, Precision

View = Optional[Callable[[Tensor], Tensor]]  # what D sees of a batch (DiffAugment, instance noise, packing)


@dataclass
class Extras:
    """The techniques acting inside a step (all off by default), and the numeric precision."""
    view: View = None
    r1_gamma: float = 0.0
    r2_gamma: float = 0.0  # R2: the zero-centred gradient penalty on the fakes
    replay: Optional[nn.Module] = None  # ReplayBuffer: old fakes mixed into D's fake batch
    ha_d: Optional[nn.Module] = None  # HistoricalAverage of D's weights
    ha_g: Optional[nn.Module] = None  # HistoricalAverage of G's weights
    ha_weight: float = 0.0
    feature_matching: str = "off"  # off | only | add
    unrolled_steps: int = 0  # G's loss through D after this many differentiable D updates (Metz et al.)
    opt_d: Optional[torch.optim.Optimizer] = None  # D's optimizer, whose rule and state the unrolling follows
    prec: Precision = FP32  # autocast and gradient scalers (train.amp)
    cond: Unlabelled = NONE  # what labels or InfoGAN codes add (config section cond)
    gp_lambda: float = 10.0  # wgan-gp: weight of the gradient penalty
    clip: float = 0.01  # wgan: D's weights are clipped to [-clip, clip]
    rt_threshold: Optional[float] = None  # ADA: report d_real_sign = E[sign(D(x) - this)] on the real batch


@dataclass
class Batch:
    """What one step trains on: this process's share of the real batch and of the latent codes."""
    real: Tensor  # [b, *shape] in [-1, 1]
    z: Tensor  # [b, latent_dim]
    y_real: Optional[Tensor] = None  # classes shown to D with the real batch (class-conditional D)
    y_fake: Optional[Tensor] = None  # classes or InfoGAN codes of the fakes
    labelled: Optional[tuple[Tensor, Tensor]] = None  # semi-supervised: a labelled batch (images, classes)


NO_EXTRAS = Extras()


def _seen(x: Tensor, e: Extras) -> Tensor:
    return e.view(x) if e.view is not None else x


def grad_norm(params) -> Tensor:
    """Global L2 norm of the gradients of some parameters (a diagnostic: vanishing or exploding updates)."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def scaled_grad_norm(net: nn.Module, scaler: torch.amp.GradScaler) -> Tensor:
    """G's or D's gradient norm after unscaling. With fp16 a step whose gradients overflowed is skipped by
    the scaler (and its scale lowered): that is bookkeeping, not divergence, so it is logged as 0."""
    norm = grad_norm(net.parameters())
    return torch.nan_to_num(norm, nan=0.0, posinf=0.0) if scaler.is_enabled() else norm


def d_output(logits: Tensor, obj: Objective) -> Tensor:
    """Mean D output to report: a probability for BCE objectives, the raw critic value otherwise."""
    logits = logits.float()
    return (torch.sigmoid(logits) if obj.probabilities else logits).mean()


def classifier_step(D: nn.Module, opt_d: torch.optim.Optimizer, batch: Batch, obj: Objective,
                    e: Extras = NO_EXTRAS) -> dict[str, Tensor]:
    """The semi-supervised baseline: D's classifier trained on the labelled batch alone, no GAN."""
    images, classes = batch.labelled
    with e.prec.autocast():
        loss = torch.nn.functional.cross_entropy(e.cond.judge(D, _seen(images, e))[1].float(), classes)
    return _d_update(D, opt_d, loss, {"class_d": loss}, e, obj)


def d_step(G: nn.Module, D: nn.Module, opt_d: torch.optim.Optimizer, batch: Batch, obj: Objective,
           e: Extras = NO_EXTRAS) -> dict[str, Tensor]:
    """One D update on a real batch and G(z). Returns detached scalars for the log."""
    c, y_real, y_fake = e.cond, batch.y_real, batch.y_fake
    with torch.no_grad(), e.prec.autocast():
        fake = c.generate(G, batch.z, y_fake)
    if e.replay is not None:
        fake, y_fake = e.replay.mix(fake, y_fake)
    real, fake = _seen(batch.real, e), _seen(fake, e)  # [N/pack, ...] as D sees them
    with e.prec.autocast():
        real_out, aux_real = c.judge(D, real, y_real)  # [N] logits, auxiliary head or None
        fake_out, aux_fake = c.judge(D, fake, y_fake)
        loss_real, loss_fake = (c.adversarial_weight * v for v in obj.d(real_out.float(), fake_out.float()))
        extra = c.d_extra(aux_real, aux_fake, y_real, y_fake)
        if batch.labelled is not None:  # K+1 GAN: the supervised part on the labelled batch (and its switches)
            extra.update(c.labelled_terms(D, batch.real, batch.labelled, lambda x: _seen(x, e)))
    loss = loss_real + loss_fake + sum(extra.values())
    stats = dict(loss_d_real=loss_real, loss_d_fake=loss_fake, **extra)
    loss = loss + _penalties(D, real, fake, (y_real, y_fake), obj, e, stats)
    stats.update(d_real=d_output(real_out, obj), d_fake=d_output(fake_out, obj))
    if e.rt_threshold is not None:  # ADA's overfitting heuristic, on the real batch as D saw it (augmented)
        stats["d_real_sign"] = torch.sign(real_out.detach().float() - e.rt_threshold).mean()
    return _d_update(D, opt_d, loss, stats, e, obj)


def _penalties(D: nn.Module, real: Tensor, fake: Tensor, ys: tuple, obj: Objective, e: Extras,
               stats: dict) -> Tensor:
    """WGAN-GP, R1, R2 and historical averaging terms of D's loss (each logged under its name). ys: the classes
    (or codes) of the real batch and of the fakes, which a class-conditional D sees beside them."""
    def critic_of(y):
        return D if not e.cond.active else (lambda x: e.cond.judge(D, x, y)[0])

    critic = critic_of(ys[0])  # interpolates and R1 see the real batch's classes
    total = real.new_zeros((), dtype=torch.float32)
    if e.r2_gamma > 0:  # the fakes were made without a graph: R2's gradient reaches D only, never G
        stats["r2"] = r1_penalty(critic_of(ys[1]), fake)
        total = total + 0.5 * e.r2_gamma * stats["r2"]
    if obj.gradient_penalty:
        stats["gp"] = gradient_penalty(critic, real, fake)
        total = total + e.gp_lambda * stats["gp"]
    if e.r1_gamma > 0:
        stats["r1"] = r1_penalty(critic, real)
        total = total + 0.5 * e.r1_gamma * stats["r1"]
    if e.ha_d is not None:
        stats["ha_d"] = e.ha_d.penalty()
        total = total + e.ha_weight * stats["ha_d"]
    return total


def _d_update(D: nn.Module, opt_d: torch.optim.Optimizer, loss: Tensor, stats: dict, e: Extras, obj: Objective
              ) -> dict[str, Tensor]:
    opt_d.zero_grad(set_to_none=True)
    scaler = e.prec.scaler_d
    scaler.scale(loss).backward()
    scaler.unscale_(opt_d)
    stats["grad_d"] = scaled_grad_norm(D, scaler)
    scaler.step(opt_d)
    scaler.update()
    if e.ha_d is not None:
        e.ha_d.update()
    if obj.clip_weights:
        clip_weights_(D, e.clip)
    stats["loss_d"] = loss
    return {k: v.detach() for k, v in stats.items()}


def unrolled_d(D: nn.Module, opt_d: torch.optim.Optimizer, real: Tensor, fake: Tensor, obj: Objective,
               steps: int) -> dict[str, Tensor]:
    """D's parameters after `steps` more updates on (real, fake), as differentiable functions of `fake`
    (Metz et al. 2017): the G step that uses them sees how D would answer its move. The updates follow D's
    optimizer (Adam, RMSprop or SGD, from its current state); D itself and its buffers are left untouched.
    """
    group, rule = opt_d.param_groups[0], rule_of(opt_d)
    names = [n for n, _ in D.named_parameters()]
    params = {n: p.detach().requires_grad_(True) for n, p in D.named_parameters()}
    buffers = {n: b.clone() for n, b in D.named_buffers()}  # BatchNorm statistics, spectral-norm vectors
    state = [opt_d.state.get(p, {}) for p in D.parameters()]
    moments = [(s.get("exp_avg", 0.0), s.get("exp_avg_sq", s.get("square_avg", 0.0)), float(s.get("step", 0)))
               for s in state]
    for _ in range(steps):
        out_r = torch.func.functional_call(D, (params, buffers), (real,))
        out_f = torch.func.functional_call(D, (params, buffers), (fake,))
        loss = sum(obj.d(out_r, out_f))
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
        new_moments = []
        for n, g, (m, v, t) in zip(names, grads, moments):
            update, m, v, t = rule(group, g, m, v, t)
            params[n] = params[n] - update
            new_moments.append((m, v, t))
        moments = new_moments
    return {**params, **buffers}


def g_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, batch: Batch, obj: Objective,
           e: Extras = NO_EXTRAS) -> dict[str, Tensor]:
    """One G update through a D whose parameters are left untouched."""
    c, y_fake = e.cond, batch.y_fake
    D.requires_grad_(False)
    with e.prec.autocast():
        image, g_logits = c.generate_for_g_step(G, batch.z, y_fake)  # G's own class head: logits, else None
        fake = _seen(image, e)
        aux_fake = None
        if e.feature_matching == "only":  # feature matching alone: G's objective is D's features, not its output
            with torch.no_grad():
                fake_out, _ = c.judge(D, fake, y_fake)
            loss = fake.new_zeros((), dtype=torch.float32)
        elif e.unrolled_steps > 0:
            unrolled = unrolled_d(D, e.opt_d, _seen(batch.real, e), fake, obj, e.unrolled_steps)
            fake_out = torch.func.functional_call(D, unrolled, (fake,))
            loss = obj.g(fake_out.float())
        else:
            fake_out, aux_fake = c.judge(D, fake, y_fake)
            loss = obj.g(fake_out.float(), c.judge(D, _seen(batch.real, e), batch.y_real)[0].float()) if obj.paired \
                else obj.g(fake_out.float())
        stats = c.g_extra(D, fake, aux_fake, y_fake, g_logits)
        if e.feature_matching != "off":  # Salimans et al. 2016: || E f(x) - E f(G(z)) ||^2 on D's features
            with torch.no_grad():
                f_real = D.features(_seen(batch.real, e)).flatten(1).float().mean(0)  # [F] mean feature
            stats["fm"] = (f_real - D.features(fake).flatten(1).float().mean(0)).pow(2).sum()
    loss = loss + sum(stats.values())
    if e.ha_g is not None:
        stats["ha_g"] = e.ha_g.penalty()
        loss = loss + e.ha_weight * stats["ha_g"]
    opt_g.zero_grad(set_to_none=True)
    scaler = e.prec.scaler_g
    scaler.scale(loss).backward()
    scaler.unscale_(opt_g)
    norm = scaled_grad_norm(G, scaler)
    scaler.step(opt_g)
    scaler.update()
    if e.ha_g is not None:
        e.ha_g.update()
    D.requires_grad_(True)
    stats = {k: v.detach() for k, v in stats.items()}
    return {"loss_g": loss.detach(), "d_fake_g": d_output(fake_out, obj).detach(), "grad_g": norm, **stats}
