"""The callables of refine.algorithms built from a run: its G (the EMA when the run kept one) and the D of the
same checkpoint, D's output read as log p_data/p_G for the run's training objective, and held-out real
examples to calibrate D on."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..conditioning import Unlabelled
from ..config import Config
from ..errors import GankitError
from ..models import sample_z
from ..run import read_checkpoint
from ..training.techniques import trained_networks


def _as_is(out: Tensor) -> Tensor:
    return out


def _least_squares(out: Tensor) -> Tensor:
    return torch.logit(out.clamp(1e-6, 1 - 1e-6))


# How D's raw output reads as log p_data(x)/p_G(x), up to a constant, at the optimum of each objective of
# gankit.losses. BCE: D = sigmoid(out) = p/(p+q), so out = log p/q. Relativistic pairing: sigmoid(out(x) - out(y))
# is the posterior that x, not y, is the real one of a pair, whose optimum is out = log p/q + c. Least squares with
# targets 0 and 1: out = p/(p+q) itself. The Wasserstein critics (wgan, wgan-gp) and hinge (whose optimum is
# only sign(p - q)) have no such reading: drs and mh refuse them; latent uses their raw output as the energy.
READINGS: dict[str, Callable[[Tensor], Tensor]] = {"minimax": _as_is, "nonsat": _as_is, "rpgan": _as_is,
                                                   "lsgan": _least_squares}

# the prior's energy -log p(z) (up to a constant) and the box z stays in, per model.latent_dist
PRIORS: dict[str, tuple[Callable[[Tensor], Tensor], Optional[float]]] = {
    "normal": (lambda z: 0.5 * z.pow(2).sum(1), None),
    "uniform": (lambda z: z.new_zeros(len(z)), 1.0),
}


def reading_of(loss: str, method: str, needs_ratio: bool) -> Callable[[Tensor], Tensor]:
    """D's output -> log density ratio for a run trained with `loss`; a clear error where there is none."""
    if loss in READINGS:
        return READINGS[loss]
    if needs_ratio:
        raise GankitError(f"--refine {method} reads D as a density ratio, and this run's D was trained with the "
                          f"'{loss}' loss, whose critic values have none; use --refine latent, or a run trained with "
                          f"--loss {', '.join(READINGS)}")
    return _as_is


@dataclass
class Pair:
    """G and D of one checkpoint of a run, in eval mode and without gradients for their weights."""
    G: nn.Module
    D: nn.Module
    cfg: Config
    cond: Unlabelled
    path: Path
    step: int
    device: torch.device


def check_refinable(cfg: Config, run: str | Path) -> None:
    if cfg.is_translation:
        raise GankitError(f"'{run}' is an image-to-image run ({cfg.model.name}); --refine works on GANs that draw "
                          "from z (translate images with gankit translate)")
    if cfg.tech.pack > 1:
        raise GankitError(f"--refine needs a D that scores one sample at a time; the D of '{run}' judges packs of "
                          f"{cfg.tech.pack} (tech.pack)")
    if cfg.cond.supervised_only:
        raise GankitError(f"'{run}' trained D as a classifier alone (cond.supervised_only); it has no GAN to refine")


def load_pair(run_dir: str | Path, checkpoint: Optional[str] = None, device: torch.device | str = "cpu") -> Pair:
    """G (the EMA weights when the run kept them, as sampling uses) and D of the newest (or named) checkpoint."""
    from ..export.folder import refuse_exported

    refuse_exported(run_dir, "--refine")  # an exported folder holds G alone
    device = torch.device(device)
    cfg, ckpt, path = read_checkpoint(run_dir, checkpoint, device)
    check_refinable(cfg, run_dir)
    if "D" not in ckpt:
        raise GankitError(f"checkpoint '{path}' holds no discriminator; --refine needs a training checkpoint")
    G, D, cond = trained_networks(cfg, ckpt, ema=True)
    for p in (*G.parameters(), *D.parameters()):
        p.requires_grad_(False)
    return Pair(G.to(device).eval(), D.to(device).eval(), cfg, cond, path, int(ckpt["step"]), device)


class Nets:
    """propose(n, y), logit(x, y) and the latent energy over a Pair, counting the samples each network sees
    (g_forward, d_forward; backward: samples differentiated through both). y: [n] classes on the CPU, for a
    class-conditional run (None otherwise); InfoGAN's codes are drawn afresh like z. Randomness: `gen` (a CPU
    generator); G's own noise (dropout kept at sampling) is seeded from it too."""

    def __init__(self, pair: Pair, reading: Callable[[Tensor], Tensor], gen: torch.Generator):
        self.pair, self.reading, self.gen = pair, reading, gen
        self.g_forward = self.d_forward = self.backward = 0

    @property
    def fixes_class(self) -> bool:
        return self.pair.cond.takes_class

    def _on(self, y: Optional[Tensor]) -> Optional[Tensor]:
        return None if y is None else y.to(self.pair.device)

    def latents(self, n: int, y: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        """z [n, latent_dim] and G's second input (the classes y, InfoGAN's codes, or None)."""
        m = self.pair.cfg.model
        z = sample_z(n, m.latent_dim, m.latent_dist, generator=self.gen).to(self.pair.device)
        codes = y if self.fixes_class else self.pair.cond.sample(n, self.gen)
        return z, self._on(codes)

    def generate(self, z: Tensor, g_in: Optional[Tensor]) -> Tensor:
        self.g_forward += len(z)
        seed = int(torch.randint(2**62, (1,), generator=self.gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.pair.cond.generate(self.pair.G, z, g_in)

    def propose(self, n: int, y: Optional[Tensor]) -> Tensor:
        with torch.no_grad():
            return self.generate(*self.latents(n, y))

    def logit(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """[n] D's output read as a log density ratio, for x drawn within classes y."""
        self.d_forward += len(x)
        return self.reading(self.pair.cond.judge(self.pair.D, x, self._on(y))[0].float())

    def energy(self, g_in: Optional[Tensor], y: Optional[Tensor]) -> Callable[[Tensor], Tensor]:
        """E(z) = -log prior(z) - logit D(G(z)) for fixed classes or codes: z [n, d] -> [n]."""
        prior = PRIORS[self.pair.cfg.model.latent_dist][0]

        def e(z: Tensor) -> Tensor:
            if z.requires_grad:
                self.backward += len(z)
            return prior(z) - self.logit(self.generate(z, g_in), y)

        return e

    @property
    def box(self) -> Optional[float]:
        return PRIORS[self.pair.cfg.model.latent_dist][1]


def held_out(cfg: Config, n: int, gen: torch.Generator) -> tuple[Tensor, Optional[Tensor], str]:
    """Up to n real examples D did not train on, as D sees them: (x [n, ...] float, labels or None, where from).
    The run's held-out set (data.holdout, the dataset's test split, fresh points for ring and grid); without one,
    a random slice of the training data."""
    import warnings

    from ..data import load_splits

    with warnings.catch_warnings():  # a missing test split is said in the source below
        warnings.simplefilter("ignore")
        train, held = load_splits(cfg.data, cfg.train.seed)
    data, source = (held, "held-out examples") if held is not None and len(held) else \
        (train, "training examples (the run has no held-out set: D saw them)")
    idx = torch.randperm(len(data), generator=gen)[:n].sort().values
    labels = None if data.labels is None else data.labels[idx].cpu()
    return data.batch(idx).cpu(), labels, f"{len(idx)} {source}"


def logits_in_chunks(nets: Nets, x: Tensor, y: Optional[Tensor], chunk: int) -> Tensor:
    """D's logits of a CPU set x [N, ...] (classes y [N]), `chunk` at a time on the pair's device."""
    with torch.no_grad():
        return torch.cat([nets.logit(x[i:i + chunk].to(nets.pair.device), None if y is None else y[i:i + chunk]).cpu()
                          for i in range(0, len(x), chunk)])

