"""Building blocks of a run before its first step: the device, optimizers, the data order, the modules the
steps call (DDP, compile) and the semi-supervised labelled subset."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..config import Config, OptimConfig
from ..errors import GankitError
from .dist import SINGLE, Dist


def pick_device(name: str, d: Dist = SINGLE) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. An unavailable explicit choice is an error.
    Under torchrun each process takes the GPU of its LOCAL_RANK."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", d.local_rank) if d.active else torch.device("cuda")
    if name == "auto":
        return torch.device("mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise GankitError("device 'mps' requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(params, cfg: OptimConfig, lr: float, device: torch.device = torch.device("cpu")
                   ) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD; optim.impl picks the kernels: fused (Adam on CUDA), foreach (one multi-tensor
    kernel per step) or a loop over parameters."""
    impl = cfg.impl
    if impl == "auto":
        impl = "fused" if device.type == "cuda" and cfg.optimizer == "adam" else "foreach"
    kernels = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[impl]
    if impl == "fused" and cfg.optimizer != "adam":
        raise GankitError("optim.impl=fused is offered for Adam only; use foreach")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), **kernels)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, **kernels)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, **kernels)


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
            if device.type != "cuda":
                raise GankitError("train.sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm); turn it off on CPU")
            G_train = nn.SyncBatchNorm.convert_sync_batchnorm(G_train)
            D_train = nn.SyncBatchNorm.convert_sync_batchnorm(D_train)
        ids = [device.index] if device.type == "cuda" else None
        G_train, D_train = DDP(G_train, device_ids=ids), DDP(D_train, device_ids=ids)
    if t.compile:
        G_train = torch.compile(G_train)
        double_backward = cfg.loss.name == "wgan-gp" or cfg.tech.r1_gamma > 0 or cfg.tech.unrolled_steps > 0
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
