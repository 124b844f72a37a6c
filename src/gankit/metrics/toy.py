"""Mode-collapse measures on the 2-D mixtures (VEEGAN's measures, as PacGAN reports them).

A sample is high-quality when it lies within 3 standard deviations of its nearest centre; a mode is
captured when it is the nearest centre of at least one high-quality sample; reverse KL compares the
high-quality samples' mode histogram q with the uniform p: KL(q || p) = sum q log(q / p).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data.toy2d import toy_centers, toy_std


def toy_modes(samples: Tensor, dataset: str) -> dict[str, float]:
    """samples: [N, 2]. Returns modes captured, % high quality and reverse KL (nats)."""
    centers = toy_centers(dataset).to(samples)  # [K,2]
    std = toy_std(dataset)
    dist = torch.cdist(samples.float(), centers.float())  # [N,K]
    nearest_d, nearest = dist.min(dim=1)  # [N], [N]
    hq = nearest_d <= 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(centers)).double()  # [K]
    k = len(centers)
    if counts.sum() > 0:
        q = counts / counts.sum()
        nz = q > 0
        reverse_kl = float((q[nz] * (q[nz] * k).log()).sum())
    else:
        reverse_kl = math.inf
    return {"modes": int((counts > 0).sum()), "total_modes": k,
            "high_quality": 100.0 * float(hq.double().mean()), "reverse_kl": reverse_kl}
