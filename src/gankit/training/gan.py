"""The recipe of every GAN that maps z to a sample: unconditional, labelled (cGAN, AC-GAN, InfoGAN, the
semi-supervised K+1 GAN, through gankit.conditioning) and every technique switch of the `tech` section."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ..conditioning import balanced_stream, mode_of
from ..config import Config
from ..data import load_splits, toy_centers
from ..errors import GankitError
from ..losses import objective_of
from ..models import sample_z
from ..models.ssgan import data_dependent_init_
from ..observe.plots import save_samples
from ..schedules import value_at
from .augment import RT_THRESHOLDS, make_ada
from .dist import SINGLE, Dist
from .ema import ema_update_, make_ema
from .optimizers import make_optimizer
from .overfit import SignWindow, boundary_of, build_probe, heldout_usable, measure
from .precision import DTYPES, Precision
from .recipe import Recipe
from .setup import epoch_permutation, pick_labelled, wrap_for_training
from .steps import Batch, Extras, classifier_step, d_step, g_step
from .techniques import HistoricalAverage, ReplayBuffer, apply_spectral_norm, gate_closed, make_view, packed_shape


class GanRecipe(Recipe):
    def __init__(self, cfg: Config, dist: Dist = SINGLE):
        super().__init__(cfg, dist)
        t, tc = cfg.train, cfg.tech
        if t.batch_size % dist.world:
            raise GankitError(f"the batch size {t.batch_size} must divide evenly over the {dist.world} processes; "
                              f"use a multiple of {dist.world}")
        data, self.heldout = load_splits(cfg.data, seed=t.seed)  # held-out real images: never trained on
        if len(data) < t.batch_size:
            raise GankitError(f"the dataset has {len(data)} examples, fewer than the batch size {t.batch_size}; "
                              "lower --batch-size or add data")
        self.data = data.to(self.device)  # small datasets live on the device as uint8: no per-step host copies
        self.shape, self.steps_per_epoch = tuple(data.shape), len(data) // t.batch_size
        self.cond = mode_of(cfg.cond, int(data.labels.max()) + 1 if data.labels is not None else 0)
        self.cond.check_data()
        self.num_classes = self.cond.K
        torch.manual_seed(t.seed)
        G, D = self.cond.build(cfg.model, self.shape, packed_shape(self.shape, tc.pack))
        if tc.spectral_norm:
            apply_spectral_norm(D)
        data_dependent_init_(D, data.batch(torch.randperm(len(data), generator=torch.Generator().manual_seed(t.seed))[:500]))
        layout = torch.channels_last if t.channels_last and len(self.shape) == 3 else torch.contiguous_format
        self.G, self.D = G.to(self.device, memory_format=layout), D.to(self.device, memory_format=layout)
        self.channels_last = layout is torch.channels_last
        self.nets, self.generators = {"G": self.G, "D": self.D}, ("G",)
        self.optims = {"g": make_optimizer(self.G.parameters(), cfg.optim, value_at(cfg.optim.lr_g), self.device),
                       "d": make_optimizer(self.D.parameters(), cfg.optim, value_at(cfg.optim.lr_d), self.device)}
        self._fixed_inputs()
        self.labelled = None
        if self.cond.classifies and not self.cond.takes_class:  # the K+1 GAN: a few labelled examples per class
            self.labelled = pick_labelled(data.labels.cpu(), cfg.cond.labels_per_class, t.seed).to(self.data.x.device)
        self._labelled_epoch, self._labelled_order = None, None
        self.d_ema, self.d_ema_updates = (make_ema(self.D) if cfg.cond.d_ema else None), 0  # D's averaged weights
        self.replay = (ReplayBuffer(tc.replay_size, tc.replay_ratio, self.shape, self.cond.sample(1)).to(self.device)
                       if tc.replay_size else None)
        self.ha = {k: HistoricalAverage(n) for k, n in self.nets.items()} if tc.historical_averaging else {}
        self.objective = objective_of(cfg.loss.name, tc.label_smoothing, tc.label_flip)
        self.probabilities = self.objective.probabilities
        self.G_train, self.D_train = wrap_for_training(self.G, self.D, cfg, self.device, dist)
        self.z_gen = torch.Generator(device=self.device).manual_seed(t.seed + 777)  # shared by all processes
        if dist.rank > 0:  # dropout, augmentation, replay: each process its own stream
            torch.manual_seed(t.seed + 1_000_003 * dist.rank)
        self.prec = Precision(t.amp, self.device)
        if self.objective.paired and DTYPES.get(t.amp) is torch.float16:
            warnings.warn("fp16 autocast with the relativistic pairing loss broke training in R3GAN's experiments; "
                          "prefer --amp bf16", stacklevel=2)
        self.g_skipped = self.skips_in_a_row = 0  # G updates skipped by the generator-update gate
        self.ada = make_ada(tc, self.shape, t.batch_size, self.device, RT_THRESHOLDS.get(cfg.loss.name), dist=dist)
        self.last_g: dict[str, Tensor] = {}
        self.rt, self.probe = SignWindow(), None  # ADA's r_t over the latest training images; D's overfitting probe
        self.finish_setup()

    def _fixed_inputs(self) -> None:
        """The latent codes (and classes or codes, one per row) of the per-epoch grid."""
        t, m = self.cfg.train, self.cfg.model
        rows = self.cond.grid_rows()
        self.grid_cols = max(1, t.num_samples // rows) if rows else 0
        n = rows * self.grid_cols if rows else t.num_samples
        self.fixed_z = sample_z(n, m.latent_dim, m.latent_dist,
                                generator=torch.Generator().manual_seed(t.seed + 12345)).to(self.device)
        self.fixed_y = self.cond.grid(self.grid_cols, self.device) if rows else None

    # ------------------------------------------------------------ one step
    @property
    def local_batch(self) -> int:
        return self.cfg.train.batch_size // self.dist.world

    def _share(self, x: Optional[Tensor]) -> Optional[Tensor]:
        """This process's share of a tensor drawn for the whole global batch."""
        b = self.local_batch
        return None if x is None else x[self.dist.rank * b:(self.dist.rank + 1) * b]

    def batch_z(self) -> Tensor:
        """This process's share of the global batch's latent codes: the same codes as one process would draw."""
        m = self.cfg.model
        return self._share(sample_z(self.cfg.train.batch_size, m.latent_dim, m.latent_dist, self.device, self.z_gen))

    def batch(self, epoch: int, i: int) -> Batch:
        B, b = self.cfg.train.batch_size, self.local_batch
        perm = self.epoch_order(epoch, lambda e: epoch_permutation(self.cfg.train.seed, e, len(self.data)).to(
            self.data.x.device))
        first = i * B + self.dist.rank * b  # this process's share of the global batch: [first, first + b)
        idx = perm[first:first + b]
        real = self.data.batch(idx)  # [b, *shape]
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return Batch(real, self.batch_z(), self.cond.real_y(self.data.labels, idx, self.device),
                     self._share(self.cond.sample(self.cfg.train.batch_size, self.z_gen, self.device)),
                     self._labelled_batch(epoch, i * B))

    def _labelled_batch(self, epoch: int, first: int) -> Optional[tuple[Tensor, Tensor]]:
        """The K+1 GAN: this process's share of the labelled batch starting at `first` of the epoch's labelled
        stream (images in [-1, 1], classes), balanced per class and re-drawn every epoch (a pure function of
        seed and epoch: resume replays it)."""
        if self.labelled is None:
            return None
        if self._labelled_epoch != epoch:
            g = torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + epoch + 555)
            classes = self.data.labels[self.labelled].cpu()
            order = balanced_stream(classes, self.steps_per_epoch * self.cfg.train.batch_size, g)
            self._labelled_order, self._labelled_epoch = order.to(self.labelled.device), epoch
        first += self.dist.rank * self.local_batch
        idx = self.labelled[self._labelled_order[first:first + self.local_batch]]
        return self.data.batch(idx), self.data.labels[idx.to(self.data.labels.device)].to(self.device)

    def extras(self, step: int) -> Extras:
        """The techniques acting inside the D and G steps at this step."""
        tc, loss = self.cfg.tech, self.cfg.loss
        images = step * self.cfg.train.batch_size
        view = make_view(tc, step)  # DiffAugment, instance noise, packing; after ADA's pipeline when on
        return Extras(view=self.ada.view(view) if self.ada else view, r1_gamma=value_at(tc.r1_gamma, step, images),
                      r2_gamma=value_at(tc.r2_gamma, step, images), replay=self.replay,
                      ha_d=self.ha.get("D"), ha_g=self.ha.get("G"), ha_weight=tc.historical_averaging,
                      feature_matching=tc.feature_matching, unrolled_steps=tc.unrolled_steps, opt_d=self.optims["d"],
                      prec=self.prec, cond=self.cond, gp_lambda=loss.gp_lambda, clip=loss.clip,
                      rt_threshold=RT_THRESHOLDS.get(loss.name))  # d_step reports the real batch's mean sign

    def step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        e, obj = self.extras(step), self.objective
        if self.cfg.cond.supervised_only:  # the semi-supervised baseline: D's classifier on the labels alone
            return self._average_d(classifier_step(self.D_train, self.optims["d"], batch, obj, e))
        stats = self._average_d(d_step(self.G, self.D_train, self.optims["d"], batch, obj, e))
        if (step + 1) % self.cfg.optim.n_critic == 0:
            if self._gate_closed(stats):
                self.g_skipped += 1
            else:
                self.last_g = g_step(self.G_train, self.D, self.optims["g"], batch, obj, e)
                self.update_ema(step)
        sign = stats.pop("d_real_sign", None)  # E[sign(D(x) - boundary)] on this real batch (losses with one)
        if sign is not None:
            stats["r_t"] = self.rt.add(sign, self.local_batch)  # over the latest training images (overfit.py)
        if self.ada is not None:  # p and r_t to log; every tech.ada_interval steps p moves
            stats.update(self.ada.observe(sign))
        if self.cfg.tech.g_gate is not None:
            stats["g_skipped"] = torch.tensor(float(self.g_skipped))  # G updates skipped by the gate so far
        return {**stats, **self.last_g}  # between G updates the row repeats G's last values

    def _average_d(self, stats: dict) -> dict:
        """After each D update: D's weight average follows (cond.d_ema, warmed up as G's EMA is); the K+1 GAN's
        learning-rate factor joins the log while it decays."""
        if self.d_ema is not None:
            self.d_ema_updates += 1
            ema_update_(self.d_ema, self.D, self.cfg.cond.d_ema, self.d_ema_updates)
        if self.cfg.cond.lr_decay:
            stats["lr_factor"] = torch.tensor(self.lr_factor_now)
        return stats

    def lr_factor(self, pos) -> float:
        """cond.lr_decay: constant, then linear to 0 over that last share of the budget (steps or minutes)."""
        share, t = self.cfg.cond.lr_decay, self.cfg.train
        if not share:
            return 1.0
        limits = [x for x in (t.max_steps, t.epochs * self.steps_per_epoch if t.epochs else None) if x]
        done = pos.progress(min(limits) if limits else None, t.minutes * 60 if t.minutes else float("inf"))
        return min(1.0, max(0.0, (1.0 - done) / share))

    def _gate_closed(self, stats: dict) -> bool:
        """The generator-update gate: skip G while D's gap (averaged over the processes) exceeds tech.g_gate,
        for at most tech.g_gate_max_skips steps in a row: a frozen G would let the gap only grow."""
        tc = self.cfg.tech
        if tc.g_gate is None:
            return False
        closed = self.skips_in_a_row < tc.g_gate_max_skips and gate_closed(tc, self.dist.mean(stats))
        self.skips_in_a_row = self.skips_in_a_row + 1 if closed else 0
        return closed

    # ------------------------------------------------------------ what the loop reads
    @torch.no_grad()
    def write_grid(self, path: Path, title: str) -> Tensor:
        G = self.sampling_net("G")
        was_training = G.training
        G.eval()
        with torch.random.fork_rng(devices=[]):  # sampling-time dropout must not shift the training RNG
            x = self.cond.generate(G, self.fixed_z, self.fixed_y)
        G.train(was_training)
        toy = self.cfg.is_toy
        save_samples(x, path, centers=toy_centers(self.cfg.data.dataset) if toy else None, title=title,
                     nrow=self.grid_cols or None, labels=self.fixed_y if self.cond.takes_class and toy else None)
        return x

    def reference_samples(self) -> Tensor:
        t = self.cfg.train
        pick = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(t.seed))[:t.num_samples]
        return self.data.x[pick.to(self.data.x.device)]

    def evaluator(self):
        from ..metrics.evaluate import RunEvaluator

        return RunEvaluator(self.cfg, self.data.x, self.device)

    def epoch_metrics(self) -> dict[str, float]:
        if self.labelled is None:
            return {}
        if not hasattr(self, "_test_accuracy"):
            from ..metrics.classify import TestAccuracy

            try:
                self._test_accuracy = TestAccuracy(self.cfg, self.device)
            except GankitError as e:  # train anyway; say why no accuracy will be logged
                print(f"gankit: warning: no test accuracy will be logged: {e}", file=sys.stderr)
                self._test_accuracy = None
        if self._test_accuracy is None:
            return {}
        scores = {"test_accuracy": self._test_accuracy(self.D, self.cond)}  # the raw D, which classify loads
        if self.d_ema is not None:
            scores["test_accuracy_ema"] = self._test_accuracy(self.d_ema, self.cond)
        return scores

    def measure_overfitting(self) -> dict[str, float]:
        """D's accuracy on held-out, training and fake images (overfit.py), from a probe drawn once."""
        if self.cfg.cond.supervised_only or (self.dist.active and self.cfg.train.sync_batchnorm):
            return {}  # no real/fake output to measure; SyncBatchNorm would wait for the other processes
        if self.probe is None:
            if not heldout_usable(self.cond, self.heldout):
                why = "it has none" if self.heldout is None else "they have no classes D can be shown"
                warnings.warn(f"D's accuracy on held-out images is not measured ({why}): the overfitting warning is "
                              "off; hold out part of the training set with --set data.holdout=0.1, or give an image "
                              "folder a test/ subfolder", stacklevel=2)
            self.probe = build_probe(self.cfg, self.cond, self.data, self.heldout, self.device, self.local_batch)
        return measure(self.G, self.D, self.cond, self.probe, boundary_of(self.cfg.loss.name))

    def extra_state(self) -> dict:
        tech = {k: m.state_dict() for k, m in (("replay", self.replay), *self.ha.items()) if m is not None}
        if self.ada is not None:
            tech["ada"] = self.ada.state_dict()
        averaged_d = {"d_ema": self.d_ema.state_dict(), "d_ema_updates": self.d_ema_updates} if self.d_ema is not None else {}
        return {"z_gen": self.z_gen.get_state(), "amp": self.prec.state_dict(), "tech": tech,
                "g_skipped": self.g_skipped, "skips_in_a_row": self.skips_in_a_row, "fixed_z": self.fixed_z.cpu(),
                "r_t": self.rt.state_dict(), **averaged_d}

    def load_extra_state(self, state: dict) -> None:
        self.z_gen.set_state(state["z_gen"])
        self.prec.load_state_dict(state.get("amp"))
        for k, m in (("replay", self.replay), *self.ha.items()):
            if m is not None and k in state["tech"]:
                m.load_state_dict(state["tech"][k])
        if self.ada is not None and state["tech"].get("ada") is not None:
            self.ada.load_state_dict(state["tech"]["ada"])
        self.g_skipped, self.skips_in_a_row = state["g_skipped"], state["skips_in_a_row"]
        self.fixed_z = state["fixed_z"].to(self.device)
        if "r_t" in state:
            self.rt.load_state_dict(state["r_t"], self.device)
        if self.d_ema is not None and "d_ema" in state:
            self.d_ema.load_state_dict(state["d_ema"])
            self.d_ema_updates = state["d_ema_updates"]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "num_classes": self.num_classes}
