"""Building blocks of a run before its first step: the device, optimizers, the data order, the modules the
steps call (DDP, compile) and the semi-supervised labelled subset."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..config import Config
from ..devices import is_gpu
from ..errors import GankitError
from ..schedules import ever_positive
from .dist import Dist


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch, a pure function of (seed, epoch): resume replays it exactly."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def wrap_for_training(G: nn.Module, D: nn.Module, cfg: Config, device: torch.device, d: Dist
                      ) -> tuple[nn.Module, nn.Module]:
    """The modules the steps call: SyncBatchNorm and DDP under torchrun, then torch.compile if asked.
    The plain modules stay the ones saved, sampled and averaged."""
    t = cfg.train
    G_train, D_train = G, D
    if d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if t.sync_batchnorm:
            if not is_gpu(device):
                raise GankitError("train.sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm); turn it off on CPU")
            G_train = nn.SyncBatchNorm.convert_sync_batchnorm(G_train)
            D_train = nn.SyncBatchNorm.convert_sync_batchnorm(D_train)
        ids = [device.index] if is_gpu(device) else None
        G_train, D_train = DDP(G_train, device_ids=ids), DDP(D_train, device_ids=ids)
    if t.compile:
        G_train = torch.compile(G_train)
        double_backward = cfg.loss.name == "wgan-gp" or ever_positive(cfg.tech.r1_gamma) or ever_positive(cfg.tech.r2_gamma) \
            or cfg.tech.unrolled_steps > 0
        if not double_backward:  # torch.compile does not follow double backward
            D_train = torch.compile(D_train)
    return G_train, D_train


def pick_labelled(labels: torch.Tensor, per_class: Optional[int], seed: int) -> torch.Tensor:
    """Indices of `per_class` examples of each class (a seeded random choice; None: every example)."""
    if per_class is None:
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed + 99)
    chosen = []
    for k in range(int(labels.max()) + 1):
        idx = (labels == k).nonzero().flatten()
        if len(idx) < per_class:
            raise GankitError(f"class {k} has {len(idx)} examples, fewer than cond.labels_per_class={per_class}; "
                              "lower --labels-per-class")
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values
