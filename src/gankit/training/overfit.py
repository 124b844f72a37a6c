"""Is the discriminator memorising its training images? (Karras et al. 2020, "Training GANs with Limited
Data", Fig. 1: on a small dataset D's outputs on held-out real images drift towards "fake" while those on
the training images stay "real".)

Two measures, for every GAN from z (unconditional and labelled):

- r_t = E[sign(D(x_train) - b)], ADA's overfitting heuristic, over the last `images` training images as D
  saw them in its steps (augmented, when augmentation is on). b is D's decision boundary: 0 for logits (BCE,
  hinge), 0.5 for least squares (augment.RT_THRESHOLDS); WGAN critics and the relativistic loss have none,
  so no r_t. SignWindow keeps it from the per-step mean sign d_step reports (stats["d_real_sign"]):

      window = SignWindow(images=1024)
      r_t = window.add(stats["d_real_sign"], batch_size)   # a device tensor: no host synchronisation

- D's accuracy on three sets, measured with `measure()` at points of the run (watch.py, on the schedule of
  the sample grids) and by `gankit eval RUN --metrics d_acc`: held-out real images (its test accuracy: the
  share called real), training images (the share called real) and fresh fakes (the share called fake), with
  the mean raw output on each. D runs as training runs it (train mode, batches of one kind, the images as
  they are: no augmentation; PacGAN's packing kept), and leaves no trace: BatchNorm statistics and
  spectral-norm vectors are put back and the RNG streams forked, so resume stays exact. For a loss without a
  boundary the share is taken against the midpoint of D's mean outputs on the training images and on fakes.
"""
from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from ..data import Data, to_float
from ..devices import is_gpu
from ..models import sample_z
from .augment import RT_THRESHOLDS
from .techniques import pack

RT_IMAGES = 1024  # r_t is averaged over about this many of the latest training images
PROBE_IMAGES = 512  # images of each set D is scored on at each measurement
KEYS = ("d_acc_heldout", "d_acc_train", "d_acc_fake", "d_out_heldout", "d_out_train", "d_out_fake")


def boundary_of(loss: str) -> Optional[float]:
    """D calls an input real when its raw output exceeds this (None: the loss has no fixed boundary)."""
    return RT_THRESHOLDS.get(loss)


class SignWindow:
    """ADA's r_t over the last `images` training images, from the mean sign of each D step's real batch.
    add() and value() return a device tensor (no host synchronisation); state_dict() for exact resume."""

    def __init__(self, images: int = RT_IMAGES):
        self.images = images
        self.entries: deque[tuple[Tensor, int]] = deque()  # (sum of the signs of one real batch, its size)
        self.count = 0

    def add(self, mean_sign: Tensor, n: int) -> Tensor:
        self.entries.append((mean_sign.detach().float() * n, n))
        self.count += n
        while self.count - self.entries[0][1] >= self.images:  # drop the oldest while enough images remain
            self.count -= self.entries.popleft()[1]
        return self.value()

    def value(self) -> Tensor:
        if not self.entries:
            return torch.zeros(())
        return torch.stack([s for s, _ in self.entries]).sum() / self.count

    def state_dict(self) -> dict:
        return {"sums": [s.cpu() for s, _ in self.entries], "sizes": [n for _, n in self.entries]}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.entries = deque((s.to(device), n) for s, n in zip(state["sums"], state["sizes"]))
        self.count = sum(state["sizes"])


@contextlib.contextmanager
def untouched(*nets: nn.Module):
    """Run nets in train mode as the steps do, then put every buffer back (BatchNorm running statistics,
    spectral-norm vectors) and leave the RNG streams where they were."""
    saved = [[b.clone() for b in net.buffers()] for net in nets]
    gpus = [torch.cuda.current_device()] if any(is_gpu(p.device) for net in nets for p in net.parameters()) else []
    modes = [net.training for net in nets]
    with torch.random.fork_rng(devices=gpus), torch.no_grad():
        try:
            for net in nets:
                net.train()
            yield
        finally:
            for net, bufs, mode in zip(nets, saved, modes):
                for b, old in zip(net.buffers(), bufs):
                    b.copy_(old)
                net.train(mode)


@dataclass
class Probe:
    """What one measurement scores: real images of two sets and the latent codes of the fakes."""
    train: Tensor  # [n, *shape] training images (uint8 images or float points, as Data holds them)
    train_y: Optional[Tensor]  # their classes (class-conditional D's), else None
    heldout: Optional[Tensor]  # [m, *shape] held-out real images, or None when the run has none
    heldout_y: Optional[Tensor]
    z: Tensor  # [n, latent] codes of the fakes
    fake_y: Optional[Tensor]  # their classes or codes
    chunk: int  # images per D call (the training batch: BatchNorm and minibatch features see what they saw)
    pack: int = 1  # PacGAN: D judges this many images at once


def _chunks(n: int, chunk: int) -> list[slice]:
    """Slices of `chunk` covering range(n), a remainder joining the last one: BatchNorm and minibatch features
    see batches at least as large as in training (or all n when n is smaller)."""
    k = max(1, n // chunk)
    bounds = [i * chunk for i in range(k)] + [n]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _outputs(D: nn.Module, cond, x: Tensor, y: Optional[Tensor], p: Probe) -> Tensor:
    """D's raw real/fake outputs on x, chunk by chunk: [n / pack] (PatchGAN-like maps averaged per input)."""
    outs = []
    for s in _chunks(len(x), p.chunk):
        xs = to_float(x[s]) if x.dtype == torch.uint8 else x[s]  # images are kept as uint8
        out = cond.judge(D, pack(xs, p.pack), None if y is None else y[s])[0]
        outs.append(out.float().flatten(1).mean(1) if out.dim() > 1 else out.float())
    return torch.cat(outs)


CALLED_REAL_IS_RIGHT = {"train": True, "heldout": True, "fake": False}  # D's accuracy: the share called real, or fake


def measure(G: nn.Module, D: nn.Module, cond, p: Probe, boundary: Optional[float]) -> dict[str, float]:
    """D's accuracy and mean raw output on the training images, the held-out ones and fresh fakes of G
    (see the module's docstring). Returns {key: number} for the keys of KEYS the probe has, plus d_gap
    (training minus held-out accuracy) when it has held-out images."""
    y_judged = p.fake_y if cond.takes_class else None  # a class-conditional D judges each fake with its class
    with untouched(G, D):
        fake = torch.cat([cond.generate(G, p.z[s], None if p.fake_y is None else p.fake_y[s])
                          for s in _chunks(len(p.z), p.chunk)])
        outs = {"train": _outputs(D, cond, p.train, p.train_y, p), "fake": _outputs(D, cond, fake, y_judged, p)}
        if p.heldout is not None:
            outs["heldout"] = _outputs(D, cond, p.heldout, p.heldout_y, p)
    b = boundary if boundary is not None else float(outs["train"].mean() + outs["fake"].mean()) / 2
    values = {}
    for name, out in outs.items():
        called_real = float((out > b).float().mean())
        values[f"d_acc_{name}"] = called_real if CALLED_REAL_IS_RIGHT[name] else 1.0 - called_real
        values[f"d_out_{name}"] = float(out.mean())
    if p.heldout is not None:
        values["d_gap"] = values["d_acc_train"] - values["d_acc_heldout"]
    return {k: values[k] for k in (*KEYS, "d_gap") if k in values}


def _pick(data: Data, n: int, seed: int, with_labels: bool, device, pk: int) -> tuple[Tensor, Optional[Tensor]]:
    """n examples of data drawn by the seed (all when it has fewer; whole packs of pk), on the device, with
    their labels."""
    n = min(n, len(data)) // pk * pk
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    x = data.x[idx.to(data.x.device)].to(device)
    y = data.labels[idx.to(data.labels.device)].to(device) if with_labels and data.labels is not None else None
    return x, y


def build_probe(cfg, cond, train: Data, heldout: Optional[Data], device: torch.device, chunk: int,
                n: int = PROBE_IMAGES) -> Probe:
    """The sets of a run's measurements, drawn once from its seed: n training images, n held-out ones (when
    the run has a held-out split) and the codes of n fakes. A class-conditional D is shown each real image's
    class: held-out images without classes are left out (warn before, with heldout_usable)."""
    pk, seed = cfg.tech.pack, cfg.train.seed
    n = max(pk, n // pk * pk)  # whole packs
    labels = cond.takes_class
    x, y = _pick(train, n, seed + 4001, labels, device, pk)
    hx, hy = _pick(heldout, n, seed + 4002, labels, device, pk) if heldout_usable(cond, heldout) else (None, None)
    g = torch.Generator(device=device).manual_seed(seed + 4003)
    m = cfg.model
    z = sample_z(len(x), m.latent_dim, m.latent_dist, device, g)
    fake_y = cond.sample(len(x), g, device)
    return Probe(x, y, hx if hx is not None and len(hx) >= max(2, pk) else None, hy, z, fake_y,
                 max(pk, min(chunk, n) // pk * pk), pk)


def heldout_usable(cond, heldout: Optional[Data]) -> bool:
    """Held-out images D can judge: some, with classes when D takes them."""
    return heldout is not None and len(heldout) >= 2 and (not cond.takes_class or heldout.labels is not None)
