"""Discriminator-guided sampling as functions of two callables, so they can be checked on exact densities:

    propose(n, y) -> x      n fresh samples of G; y: [n] the class each is drawn within, or None
    logit(x, y)   -> [n]    D's estimate of log p_data(x) / p_G(x) (a constant offset does not matter here)

Nothing here knows networks, runs or files (refine.networks builds the two callables from a run).
All randomness comes from the torch.Generator passed in, so a seed repeats a draw exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from ..errors import GankitError

Propose = Callable[[int, Optional[Tensor]], Tensor]
Logit = Callable[[Tensor, Optional[Tensor]], Tensor]


def _pick(y: Optional[Tensor], idx: Tensor) -> Optional[Tensor]:
    return None if y is None else y[idx.to(y.device)]


# ---------------------------------------------------------------- DRS (Azadi et al. 2019)
@dataclass
class RejectionRule:
    """Accept a sample of logit d with probability sigmoid(F), F = d - M - log(1 - exp(d - M - eps)) - gamma.
    With gamma = 0 and eps -> 0 that probability is exp(d - M): rejection sampling by the density ratio
    p_data/p_G = exp(d) under its bound exp(M). M is raised to every larger logit seen."""
    max_logit: float
    gamma: float = 0.0
    eps: float = 1e-6

    def f(self, d: Tensor, m: Tensor | float) -> Tensor:
        delta = d - m  # <= 0
        return delta - torch.log(-torch.expm1(delta - self.eps)) - self.gamma

    def accept_prob(self, d: Tensor) -> Tensor:
        """d: [n] logits in the order drawn -> [n] acceptance probabilities; M follows the running maximum."""
        d = d.double()
        m = torch.cummax(d, 0).values.clamp(min=self.max_logit)  # [n] M as each sample is met
        if len(d):
            self.max_logit = float(m[-1])
        return torch.sigmoid(self.f(d, m))


def rejection_rule(burn_in: Tensor, percentile: Optional[float], eps: float = 1e-6) -> RejectionRule:
    """M = the largest burn-in logit; gamma = the `percentile`-th percentile of F over the burn-in logits
    (None: gamma = 0, plain rejection sampling)."""
    rule = RejectionRule(float(burn_in.max()), 0.0, eps)
    if percentile is not None:
        rule.gamma = float(torch.quantile(rule.f(burn_in.double(), rule.max_logit), percentile / 100))
    return rule


def rejection_fill(propose: Propose, logit: Logit, rule: RejectionRule, n: int, y: Optional[Tensor],
                   gen: torch.Generator, batch: int = 500, max_proposals: Optional[int] = None,
                   tally: Optional[dict] = None) -> tuple[Tensor, int]:
    """n samples, each kept by `rule` (slot i within class y[i]). Returns (samples [n, ...], proposals drawn).
    tally: its "accepted" is raised by every proposal the rule accepted, those beyond the n needed included
    (accepted / drawn estimates the rule's acceptance rate; n / drawn is lower when n is below `batch`).
    Without classes every accepted proposal fills the next slot; with classes each unfilled slot draws
    candidates of its own class and keeps the first accepted (rounds of at least `batch` candidates)."""
    out: Optional[Tensor] = None
    todo, drawn = torch.arange(n), 0
    limit = max_proposals if max_proposals is not None else 1000 * n
    while len(todo):
        if drawn >= limit:
            raise GankitError(f"DRS kept {n - len(todo)} of {drawn:,} proposals (acceptance "
                              f"{(n - len(todo)) / drawn:.3%}); lower --refine-percentile or use --refine mh")
        r = max(1, math.ceil(batch / len(todo)))  # candidates per unfilled slot this round
        slots = todo.repeat_interleave(r)  # [len(todo) * r] the slot each candidate is for
        x = propose(len(slots), _pick(y, slots))
        keep = torch.rand(len(slots), generator=gen) < rule.accept_prob(logit(x, _pick(y, slots)).cpu())
        drawn += len(slots)
        if tally is not None:
            tally["accepted"] = tally.get("accepted", 0) + int(keep.sum())
        out = torch.empty((n, *x.shape[1:]), dtype=x.dtype, device=x.device) if out is None else out
        if y is None:  # slots are interchangeable: accepted proposals fill them in order
            got = keep.nonzero().squeeze(1)[:len(todo)]
            out[todo[:len(got)].to(x.device)] = x[got.to(x.device)]
            todo = todo[len(got):]
            continue
        hit = keep.view(len(todo), r)  # [slots, r]
        filled = hit.any(1)
        first = hit.float().argmax(1)  # the first accepted candidate of each slot
        out[todo[filled].to(x.device)] = x[(torch.arange(len(todo)) * r + first)[filled].to(x.device)]
        todo = todo[~filled]
    return out, drawn


# ---------------------------------------------------------------- MH-GAN (Turner et al. 2019)
def independent_chains(x0: Tensor, l0: Tensor, propose: Propose, logit: Logit, k: int, gen: torch.Generator,
                       y: Optional[Tensor] = None, restart: bool = True) -> tuple[Tensor, dict]:
    """n independent Metropolis-Hastings chains whose proposals are fresh samples of G: from state (x, l),
    the proposal (x', l') is accepted with probability min(1, exp(l' - l)), l being D's calibrated logit
    (the ratio of odds (1/D(x) - 1) / (1/D(x') - 1) of the paper). x0, l0: the start states ([n, ...], [n]).
    restart: where a chain never left its start (a real example, never to be returned), its result is that
    of the same chain started at its first proposal, as the paper's code does. Returns (x [n, ...], counts)."""
    x, cur = x0.clone(), l0.double().cpu().clone()
    n = len(cur)
    moved = torch.zeros(n, dtype=torch.bool)
    alt_x: Optional[Tensor] = None  # the chain restarted at the first proposal
    alt_l = torch.empty(0)
    moves = 0
    for _ in range(k):
        xp = propose(n, y)
        lp = logit(xp, y).double().cpu()
        u = torch.rand(2, n, generator=gen, dtype=torch.float64).log()  # [2, n]: both chains' coins
        acc = u[0] < lp - cur
        x[acc.to(x.device)], cur[acc] = xp[acc.to(xp.device)], lp[acc]
        moved |= acc
        moves += int(acc.sum())
        if restart and alt_x is None:
            alt_x, alt_l = xp.clone(), lp.clone()
        elif restart:
            acc2 = u[1] < lp - alt_l
            alt_x[acc2.to(xp.device)], alt_l[acc2] = xp[acc2.to(xp.device)], lp[acc2]
    stuck = ~moved
    if restart and alt_x is not None and stuck.any():
        x[stuck.to(x.device)] = alt_x[stuck.to(x.device)]
    return x, {"moves": moves, "proposals": n * k, "restarts": int(stuck.sum()) if restart else 0}


def fit_logistic(real: Tensor, fake: Tensor, ridge: float = 1e-4, iters: int = 50) -> tuple[float, float]:
    """Logistic calibration of D (Platt scaling): (a, b) such that sigmoid(a * logit + b) is the probability that
    a sample is real, fitted by Newton's method on the class-balanced cross-entropy (so that a*l + b estimates
    log p_data/p_G whatever the two set sizes). real, fake: [n] D logits on held-out real and fresh fake data."""
    s = torch.cat([real, fake]).double()
    mean, std = s.mean(), s.std().clamp(min=1e-12)
    t = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).double()
    w = torch.cat([torch.full((len(real),), 0.5 / len(real)), torch.full((len(fake),), 0.5 / len(fake))]).double()
    feats = torch.stack([(s - mean) / std, torch.ones_like(s)], 1)  # [N, 2] standardised logit, 1
    theta = torch.zeros(2, dtype=torch.float64)
    pen = torch.tensor([ridge, 1e-12], dtype=torch.float64)  # keeps a finite when D separates the sets
    for _ in range(iters):
        p = torch.sigmoid(feats @ theta)
        grad = feats.T @ (w * (p - t)) + pen * theta
        hess = (feats.T * (w * p * (1 - p))) @ feats + torch.diag(pen)
        step = torch.linalg.solve(hess, grad)
        theta = theta - step
        if float(step.abs().max()) < 1e-10:
            break
    a = theta[0] / std
    return float(a), float(theta[1] - a * mean)


# ---------------------------------------------------------------- latent refinement (Che et al. 2020)
def langevin(z: Tensor, energy: Callable[[Tensor], Tensor], steps: int, step_size: float, noise: float,
             gen: torch.Generator, box: Optional[float] = None) -> tuple[Tensor, Tensor, Tensor]:
    """`steps` updates z <- z - (eps/2) grad E(z) + noise * sqrt(eps) * n, n ~ N(0, I): Langevin dynamics on
    the energy E (noise 1) or gradient descent (noise 0). energy: z [n, d] -> [n]. box: keep z in [-box, box]
    (a uniform prior). Returns (z, E before, E after)."""
    before = None
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        e = energy(z)
        (grad,) = torch.autograd.grad(e.sum(), z)
        before = e.detach() if before is None else before
        kick = torch.randn(z.shape, generator=gen).to(z.device) if noise else 0.0
        z = z.detach() - 0.5 * step_size * grad + noise * math.sqrt(step_size) * kick
        if box is not None:
            z = z.clamp(-box, box)
    with torch.no_grad():
        after = energy(z.detach()).detach()
    return z.detach(), (after if before is None else before), after
