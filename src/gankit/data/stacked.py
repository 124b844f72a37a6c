"""Stacked datasets: three independently drawn grayscale images as the R, G and B channels of one image.

The offline analogue of Stacked MNIST, the mode-collapse benchmark of VEEGAN and PacGAN: 128,000 images
of 28x28x3 whose modes are the 10^3 class triples. The draw is fixed by the seed; the label of an image is
its class triple encoded as 100*c0 + 10*c1 + c2 (c0 the class of its R channel).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..config import STACKED_DATASETS

# stacked dataset -> the grayscale dataset its channels are drawn from
STACKED_SOURCES = dict(zip(STACKED_DATASETS, ("fashion-mnist", "mnist"), strict=True))
STACKED_SIZE = 128_000  # images drawn when data.limit is not given (the papers' training set)
CHANNELS = 3


def triple_code(classes: Tensor, k: int = 10) -> Tensor:
    """[N,3] classes of the three channels -> [N] labels c0*k^2 + c1*k + c2 (k=10: 100*c0 + 10*c1 + c2)."""
    weights = torch.tensor([k * k, k, 1], dtype=torch.long, device=classes.device)
    return (classes.long() * weights).sum(1)


def stack_indices(num_source: int, n: int | None, seed: int) -> Tensor:
    """[n,3] source indices of each channel, drawn uniformly and independently (with replacement). The
    first n rows of the full draw, so a smaller n (data.limit) is a prefix of the full dataset."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(num_source, (STACKED_SIZE, CHANNELS), generator=g)
    return idx if n is None or n >= STACKED_SIZE else idx[:n]


def stack(x: Tensor, labels: Tensor, n: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """Source images [M,1,H,W] uint8 and their labels [M] -> (stacked [n,3,H,W], class-triple labels [n])."""
    idx = stack_indices(len(x), n, seed)
    images = x[:, 0][idx]  # [n,3,H,W]: channel c of image i is source image idx[i, c]
    return images.contiguous(), triple_code(labels[idx])
