"""Where tensors live: the device a run asks for (`--device auto|cpu|cuda|mps`), and whether it is a GPU."""
from __future__ import annotations

import torch

from .errors import GankitError


def _has_mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


AVAILABLE = {"cuda": torch.cuda.is_available, "mps": _has_mps, "cpu": lambda: True}
WHAT = {"cuda": "a CUDA GPU", "mps": "Apple MPS", "cpu": "a CPU"}


def pick_device(name: str, local_rank: int | None = None) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. An unavailable explicit choice is an error.
    Under torchrun (local_rank given) each process takes the GPU of its LOCAL_RANK."""
    kind = next(k for k in AVAILABLE if AVAILABLE[k]()) if name not in AVAILABLE else name
    if not AVAILABLE[kind]():
        raise GankitError(f"device '{name}' requested but {WHAT[kind]} is not available here; use --device cpu or auto")
    return torch.device(kind, local_rank) if is_gpu(torch.device(kind)) and local_rank is not None else torch.device(kind)


def is_gpu(device: torch.device | str) -> bool:
    """A CUDA device (the only kind with AMP, fused optimizers and NCCL)."""
    return torch.device(device).type == "cuda"
