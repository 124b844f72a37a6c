"""2-D Gaussian mixtures, the standard mode-collapse benchmarks (as in PacGAN's released code).

ring: 8 Gaussians evenly spaced on a circle of radius 1, std 0.01.
grid: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def toy_centers(name: str) -> Tensor:
    """[K, 2] mode centres of a toy mixture."""
    if name == "ring":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], dim=1).float()
    if name == "grid":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        xs, ys = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([xs.flatten(), ys.flatten()], dim=1)
    raise ValueError(f"unknown toy dataset {name!r}")


def toy_std(name: str) -> float:
    return {"ring": 0.01, "grid": 0.05}[name]


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """[n, 2] float32 points: a uniformly chosen centre plus isotropic Gaussian noise."""
    centers = toy_centers(name)
    idx = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * toy_std(name)
    return centers[idx] + noise
