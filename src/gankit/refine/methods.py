"""The methods of `--refine`, each driving refine.algorithms over a run's networks (refine.networks.Nets):
set up once (DRS's burn-in, MH's calibration), then draw kept samples n at a time. A Refiner streams them in
chunks and reports what each method did and what it cost (G and D passes and seconds per kept sample)."""
from __future__ import annotations

import time
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor

from ..config import SampleConfig
from ..errors import GankitError
from ..registry import Registry
from .algorithms import fit_logistic, independent_chains, langevin, rejection_fill, rejection_rule
from .networks import Nets, Pair, held_out, logits_in_chunks, reading_of

Classes = Callable[[int], Optional[Tensor]]  # n -> the classes of n samples (None: the run takes none)


class Method:
    """One refinement. keys: its settings in the config section `sample`; needs_ratio: it reads D as a
    density ratio (and refuses critics that are none)."""
    keys: tuple[str, ...] = ()
    needs_ratio = True

    def __init__(self, nets: Nets, opts: SampleConfig, gen: torch.Generator, chunk: int, klass: Optional[int]):
        self.nets, self.opts, self.gen, self.chunk, self.klass = nets, opts, gen, chunk, klass

    def setup(self, classes: Classes) -> None:
        """What the method needs before its first sample."""

    def draw(self, n: int, y: Optional[Tensor]) -> Tensor:
        """n kept samples (within classes y [n] when the run takes classes)."""
        raise NotImplementedError

    def report(self) -> dict:
        return {}


METHODS: Registry[type] = Registry("refinement method")


@METHODS.register("drs")
class DRS(Method):
    """Discriminator rejection sampling (Azadi et al. 2019)."""
    keys = ("drs_percentile", "drs_burn_in")

    def setup(self, classes):
        logits, left = [], self.opts.drs_burn_in
        with torch.no_grad():
            while left > 0:
                n = min(self.chunk, left)
                y = classes(n)
                logits.append(self.nets.logit(self.nets.propose(n, y), y).cpu())
                left -= n
        self.rule = rejection_rule(torch.cat(logits), self.opts.drs_percentile)
        self.burn_in_max = self.rule.max_logit
        self.proposals = self.kept = 0
        self.tally = {"accepted": 0}  # every proposal the rule accepted (more than kept when n < the chunk)

    def draw(self, n, y):
        with torch.no_grad():
            x, drawn = rejection_fill(self.nets.propose, self.nets.logit, self.rule, n, y, self.gen, self.chunk,
                                      tally=self.tally)
        self.proposals += drawn
        self.kept += n
        return x

    def report(self):
        return {"burn_in": self.opts.drs_burn_in, "percentile": self.opts.drs_percentile, "gamma": self.rule.gamma,
                "max_logit_burn_in": self.burn_in_max, "max_logit": self.rule.max_logit, "proposals": self.proposals,
                "acceptance": self.tally["accepted"] / max(self.proposals, 1)}


@METHODS.register("mh")
class MH(Method):
    """Metropolis-Hastings GAN (Turner et al. 2019): independent chains over G's samples, D calibrated on
    held-out real data, each chain started at a real example (never returned)."""
    keys = ("mh_chain", "mh_calibration")

    def setup(self, classes):
        nets, fixed = self.nets, self.nets.fixes_class
        real, labels, self.source = held_out(nets.pair.cfg, self.opts.mh_calibration, self.gen)
        if fixed and labels is None:
            raise GankitError("--refine mh on a class-conditional run needs labelled held-out examples")
        if fixed and self.klass is not None:
            keep = labels == self.klass
            real, labels = real[keep], labels[keep]
        if len(real) < 2:
            raise GankitError(f"--refine mh found {len(real)} held-out real examples to calibrate D on; it needs 2 or more")
        self.labels = labels if fixed else None
        real_logit = logits_in_chunks(nets, real, self.labels, self.chunk)
        sizes = [min(self.chunk, len(real) - i) for i in range(0, len(real), self.chunk)]
        parts = list(self.labels.split(self.chunk)) if self.labels is not None else [None] * len(sizes)
        with torch.no_grad():  # as many fakes, of the same classes
            fake_logit = torch.cat([nets.logit(nets.propose(n, y), y).cpu() for n, y in zip(sizes, parts)])
        self.a, self.b = fit_logistic(real_logit, fake_logit)
        self.real, self.real_logit = real, self.a * real_logit.double() + self.b
        self.moves = self.proposals = self.restarts = 0

    def calibrated(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        return self.a * self.nets.logit(x, y).double() + self.b

    def _starts(self, n: int, y: Optional[Tensor]) -> Tensor:
        """A random held-out real example for each chain (of the chain's class)."""
        if y is None:
            return torch.randint(len(self.real), (n,), generator=self.gen)
        order = self.labels.argsort(stable=True)  # the held-out examples grouped by class
        count = torch.bincount(self.labels, minlength=int(y.max()) + 1)  # [K]
        if (count[y] == 0).any():
            raise GankitError(f"--refine mh has no held-out real example of class {int(y[count[y] == 0][0])} to "
                              "start a chain from")
        first = torch.cumsum(count, 0) - count  # [K] where each class starts in `order`
        pick = (torch.rand(n, generator=self.gen, dtype=torch.float64) * count[y]).long()  # uniform within the class
        return order[first[y] + pick]

    def draw(self, n, y):
        starts = self._starts(n, y)
        x0 = self.real[starts].to(self.nets.pair.device)
        with torch.no_grad():
            x, counts = independent_chains(x0, self.real_logit[starts], self.nets.propose, self.calibrated,
                                           self.opts.mh_chain, self.gen, y)
        self.moves += counts["moves"]
        self.proposals += counts["proposals"]
        self.restarts += counts["restarts"]
        return x

    def report(self):
        return {"chain_length": self.opts.mh_chain, "calibration": {"a": self.a, "b": self.b, "on": self.source},
                "proposals": self.proposals, "moves": self.moves, "restarts": self.restarts,
                "acceptance": self.moves / max(self.proposals, 1)}


@METHODS.register("latent")
class Latent(Method):
    """Discriminator-driven latent sampling (Che et al. 2020): Langevin (or gradient) steps on
    E(z) = |z|^2/2 - logit D(G(z)), then G(z)."""
    keys = ("latent_steps", "latent_step_size", "latent_noise")
    needs_ratio = False

    def setup(self, classes):
        self.before = self.after = 0.0
        self.kept = 0

    def draw(self, n, y):
        o, nets = self.opts, self.nets
        z, g_in = nets.latents(n, y)
        z, before, after = langevin(z, nets.energy(g_in, y), o.latent_steps, o.latent_step_size, o.latent_noise,
                                    self.gen, nets.box)
        self.before += float(before.sum())
        self.after += float(after.sum())
        self.kept += n
        with torch.no_grad():
            return nets.generate(z, g_in)

    def report(self):
        o, k = self.opts, max(self.kept, 1)
        return {"steps": o.latent_steps, "step_size": o.latent_step_size, "noise": o.latent_noise,
                "energy_before": self.before / k, "energy_after": self.after / k}


class Refiner:
    """Refined samples of a Pair, chunk by chunk, with a report of the work. klass: every sample within this
    class (class-conditional runs); otherwise classes are drawn as plain sampling draws them."""

    def __init__(self, pair: Pair, opts: SampleConfig, seed: int = 0, klass: Optional[int] = None, chunk: int = 500):
        cls = METHODS.get(opts.refine)
        self.gen = torch.Generator().manual_seed(seed)
        self.nets = Nets(pair, reading_of(pair.cfg.loss.name, opts.refine, cls.needs_ratio), self.gen)
        self.method: Method = cls(self.nets, opts, self.gen, chunk, klass)
        self.opts, self.klass, self.chunk = opts, klass, chunk
        self.kept, self.seconds, self.ready = 0, 0.0, False

    def classes(self, n: int) -> Optional[Tensor]:
        if not self.nets.fixes_class:
            return None
        if self.klass is not None:
            return torch.full((n,), self.klass, dtype=torch.long)
        return self.nets.pair.cond.sample(n, self.gen)

    def chunks(self, num: int) -> Iterator[Tensor]:
        """num refined samples (on the CPU), `chunk` at a time."""
        for start in range(0, num, self.chunk):
            t0 = time.perf_counter()
            if not self.ready:
                self.method.setup(self.classes)
                self.ready = True
            n = min(self.chunk, num - start)
            x = self.method.draw(n, self.classes(n)).cpu()
            self.kept += n
            self.seconds += time.perf_counter() - t0
            yield x

    def report(self) -> dict:
        """What was done and what it cost per kept sample (burn-in and calibration included)."""
        nets, k = self.nets, max(self.kept, 1)
        out = {"method": self.opts.refine, "kept": self.kept, "g_forward": nets.g_forward, "d_forward": nets.d_forward,
               "g_forward_per_kept": nets.g_forward / k, "d_forward_per_kept": nets.d_forward / k,
               "seconds": round(self.seconds, 3), "ms_per_kept": 1000 * self.seconds / k}
        if nets.backward:
            out["backward_per_kept"] = nets.backward / k
        out.update(self.method.report())
        return out
