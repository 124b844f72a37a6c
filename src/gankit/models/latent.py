"""Latent codes z: what every generator from z draws its samples from."""
from __future__ import annotations

import torch
from torch import Tensor


def sample_z(n: int, dim: int, dist: str, device: torch.device | str = "cpu",
             generator: torch.Generator | None = None) -> Tensor:
    """[n, dim] latent codes from N(0, I) or U(-1, 1)."""
    if dist == "uniform":
        return torch.rand(n, dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, dim, device=device, generator=generator)
