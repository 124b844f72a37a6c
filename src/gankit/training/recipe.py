"""What differs between GAN families, behind one small interface that the one training loop drives.

A recipe owns its networks, optimizers and data. The loop asks it for a batch, lets it take one step,
and reads back plain numbers; everything the loop adds (NaN guard and rollback, EMA of the generators,
checkpoints and exact resume, logging, diagnostics, evaluation, plots) works the same for every family:

    recipe.batch(epoch, i) -> batch          recipe.step(batch, step) -> {name: scalar tensor}
    recipe.write_grid(path, title)           recipe.evaluator()       recipe.state_dict() / load_state_dict()
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..config import Config
from ..devices import is_gpu, pick_device
from ..errors import GankitError
from ..schedules import is_scheduled, value_at
from .dist import SINGLE, Dist
from .ema import ema_update_, make_ema
from .precision import DTYPES


def rng_state(device: torch.device) -> dict:
    """The global RNG streams a step draws from: the CPU's, and the GPUs' on CUDA."""
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if is_gpu(device) else None}


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if is_gpu(device) and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


class Recipe:
    """Base of every family. Subclasses fill `nets` (all saved networks by name), `generators` (the names
    whose EMA is kept and sampled), `optims` ({'g': ..., 'd': ...}) and implement the methods below."""
    probabilities = True  # D's outputs are probabilities (plots and diagnostics read them so)
    supports_dist = True  # torchrun (DDP)
    supports_amp = True  # train.amp autocast on CUDA
    ada = None  # adaptive augmentation (training/augment.py) of the family's D inputs, when on
    supports_compile = True  # train.compile

    def __init__(self, cfg: Config, dist: Dist = SINGLE):
        t = cfg.train
        self.cfg, self.dist = cfg, dist
        self._refuse_unsupported(cfg, dist)
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = pick_device(t.device, dist.local_rank if dist.active else None)
        if t.amp in DTYPES and not is_gpu(self.device):
            raise GankitError(f"train.amp={t.amp} needs a CUDA GPU (on this {self.device.type} it would be slower "
                              "than float32); use --amp off")
        self.nets: dict[str, nn.Module] = {}
        self.generators: tuple[str, ...] = ()
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.ema: dict[str, nn.Module] = {}
        self.lr_scale = 1.0  # halved at each rollback after a divergence
        self._order_epoch, self._order = None, None
        self.ema_updates = 0
        self.steps_per_epoch = 1
        self.shape: tuple[int, ...] = ()

    def _refuse_unsupported(self, cfg: Config, dist: Dist) -> None:
        family = type(self).__name__.replace("Recipe", "")
        for ok, what in ((self.supports_dist or not dist.active, "torchrun (several processes)"),
                         (self.supports_amp or cfg.train.amp not in DTYPES, f"train.amp={cfg.train.amp}"),
                         (self.supports_compile or not cfg.train.compile, "train.compile")):
            if not ok:
                raise GankitError(f"{what} is not offered for {family} runs yet; run without it")

    # ------------------------------------------------------------ set by subclasses, used by the loop
    def batch(self, epoch: int, i: int) -> Any:
        """The i-th batch of an epoch (a pure function of seed, epoch and i: resume replays it)."""
        raise NotImplementedError

    def step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """One training step (D, then G when due). Returns detached scalars to log."""
        raise NotImplementedError

    @torch.no_grad()
    def write_grid(self, path: Path, title: str) -> Optional[torch.Tensor]:
        """Write the fixed sample grid; return the samples when diagnostics can read them (else None)."""
        raise NotImplementedError

    def reference_samples(self) -> torch.Tensor:
        """Real examples (uint8 images or points) the diagnostics compare samples with."""
        raise NotImplementedError

    def evaluator(self):
        """The family's metric for --eval-every: a callable (recipe) -> {name: value} with .is_best(values),
        .best, .num and .info, or None when the family has none."""
        return None

    def epoch_metrics(self) -> dict[str, float]:
        """Numbers measured at the end of every epoch (the semi-supervised GAN's test accuracy)."""
        return {}

    def measure_overfitting(self) -> dict[str, float]:
        """D's accuracy on held-out and training images and on fresh fakes (training/overfit.py), measured on
        the main process every train.sample_every_images images; {} when the family has no such measure."""
        return {}

    def lr_factor(self, pos) -> float:
        """A family's own learning-rate factor at this position (1: none; CycleGAN decays to 0)."""
        return 1.0

    def extra_state(self) -> dict:
        """Family-specific state for exact resume (RNG streams, buffers of techniques, pools)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ------------------------------------------------------------ common to every family
    def epoch_order(self, epoch: int, make):
        """The epoch's data order, made by make(epoch) once per epoch rather than at every batch."""
        if self._order_epoch != epoch:
            self._order, self._order_epoch = make(epoch), epoch
        return self._order

    def finish_setup(self) -> None:
        """After the subclass built its networks and optimizers: EMA copies and base learning rates."""
        if self.cfg.train.ema_decay or self.cfg.train.ema_half_life is not None:
            self.ema = {k: make_ema(self.nets[k]) for k in self.generators}
        self.lr_factor_now = 1.0

    def update_ema(self, step: int = 0) -> None:
        """After each generator update: the EMA follows (warmed up over the first updates). With a half-life
        of H images, the decay per update of B images is 0.5 ** (B / H)."""
        if self.ema:
            t = self.cfg.train
            self.ema_updates += 1
            decay = t.ema_decay
            if t.ema_half_life is not None:
                half_life = value_at(t.ema_half_life, step, step * t.batch_size)
                decay = 0.5 ** (t.batch_size / half_life) if half_life > 0 else 0.0
            for k, avg in self.ema.items():
                ema_update_(avg, self.nets[k], decay, self.ema_updates)

    def sampling_net(self, name: str) -> nn.Module:
        """The network to sample and evaluate with: its EMA when the run keeps one."""
        return self.ema.get(name, self.nets[name])

    def apply_schedules(self, pos) -> dict[str, torch.Tensor]:
        """Learning rates = the configured value or schedule at this step x the family's factor (CycleGAN's
        decay) x lr_scale (halved at each rollback); Adam's beta2 likewise. Returns the scheduled values, to log."""
        o, t, step = self.cfg.optim, self.cfg.train, pos.step
        images = step * t.batch_size
        self.lr_factor_now = self.lr_factor(pos)
        for k, opt in self.optims.items():
            lr = value_at(getattr(o, f"lr_{k}"), step, images) * self.lr_factor_now * self.lr_scale
            for group in opt.param_groups:
                group["lr"] = lr
                if group.get("betas") is not None:
                    group["betas"] = (group["betas"][0], value_at(o.beta2, step, images))
        if self.ada is not None:
            self.ada.at(step, images)
        keys = {"lr_g": o.lr_g, "lr_d": o.lr_d, "beta2": o.beta2, "r1_gamma": self.cfg.tech.r1_gamma,
                "r2_gamma": self.cfg.tech.r2_gamma, "ema_half_life": t.ema_half_life, "ada_p": self.cfg.tech.ada_p}
        return {k: torch.tensor(value_at(v, step, images)) for k, v in keys.items() if is_scheduled(v)}

    def finite(self) -> bool:
        """No weight is NaN or infinite (a diverged state never replaces a good checkpoint)."""
        nets = list(self.nets.values()) + list(self.ema.values())
        return all(bool(torch.isfinite(p).all()) for net in nets for p in net.parameters())

    def state_dict(self) -> dict:
        state = {name: net.state_dict() for name, net in self.nets.items()}
        state.update({f"{name}_ema": net.state_dict() for name, net in self.ema.items()})
        state.update({f"opt_{k}": opt.state_dict() for k, opt in self.optims.items()})
        state.update(lr_scale=self.lr_scale, ema_updates=self.ema_updates, rng=rng_state(self.device),
                     shape=list(self.shape), config=self.cfg.to_dict(), extra=self.extra_state())
        return state

    def load_state_dict(self, ckpt: dict) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(ckpt[name])
        for name, net in self.ema.items():
            net.load_state_dict(ckpt.get(f"{name}_ema") or ckpt[name])
        for k, opt in self.optims.items():
            opt.load_state_dict(ckpt[f"opt_{k}"])
        self.lr_scale, self.ema_updates = ckpt.get("lr_scale", 1.0), ckpt.get("ema_updates", 0)
        self.load_extra_state(ckpt.get("extra", {}))
        rngs = ckpt.get("rng_ranks")
        if rngs and len(rngs) == self.dist.world:  # each process continues its own stream
            set_rng_state(rngs[self.dist.rank], self.device)
        else:
            set_rng_state(ckpt["rng"], self.device)
            if self.dist.rank > 0:  # resumed with another number of processes: fresh distinct streams
                torch.manual_seed(self.cfg.train.seed + 1_000_003 * self.dist.rank + ckpt["step"])
