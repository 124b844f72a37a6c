"""Modes of a stacked dataset (Stacked MNIST as VEEGAN and PacGAN measure it, here also on Fashion-MNIST).

Each channel of each generated image is classified by the domain judge of the source dataset; the class
triple is the image's mode (10^3 of them). Reported: the modes covered (at least one sample) and the
reverse KL of the mode histogram q to the uniform p of the data, KL(q || p) = sum q log(q / p) in nats,
PacGAN's KL(P_model || P_data). The papers' protocol scores 26,000 samples.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

from ..data.stacked import CHANNELS, STACKED_SOURCES, triple_code

STACKED_NUM = 26_000  # samples scored when --num is not given (VEEGAN, PacGAN)
Classify = Callable[[Tensor], Tensor]  # uint8 [M,1,H,W] -> classes [M] (long)


def stacked_modes(classes: Tensor, k: int = 10) -> dict[str, float]:
    """classes: [N,3] class of each channel of N images, k classes each. Modes covered of k^3 and the
    reverse KL of the mode histogram to uniform."""
    total = k ** CHANNELS
    counts = torch.bincount(triple_code(classes.cpu(), k), minlength=total).double()
    q = counts / counts.sum()
    nz = q > 0
    reverse_kl = float((q[nz] * (q[nz] * total).log()).sum()) if counts.sum() > 0 else math.inf
    return {"modes": int(nz.sum()), "total_modes": total, "reverse_kl": reverse_kl}


def channel_classes(images: Tensor, classify: Classify, batch: int = 3000) -> Tensor:
    """uint8 [N,3,H,W] -> [N,3]: the class of each channel, each classified as a one-channel image."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, 1, h, w)
    return torch.cat([classify(part).long().cpu() for part in flat.split(batch)]).view(n, c)


def judge_classifier(source: str, data_dir: Optional[str], device: str) -> tuple[Classify, int]:
    """The source dataset's judge as a classifier (trained with `gankit judge train --dataset SOURCE`), and
    its number of classes."""
    from .features import judge_extractor

    ex = judge_extractor(source, data_dir, device)
    return (lambda x: torch.from_numpy(ex.features(x)[1].argmax(1))), len(ex.class_histogram)


def image_modes(images: Tensor, dataset: str, data_dir: Optional[str] = None, device: str = "cpu") -> dict:
    """Modes of generated images of a stacked dataset, each channel classified by its source's judge."""
    classify, k = judge_classifier(STACKED_SOURCES[dataset], data_dir, device)
    return stacked_modes(channel_classes(images, classify), k)
