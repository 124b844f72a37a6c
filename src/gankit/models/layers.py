"""Blocks shared by the model families."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GankitError


def plan_resolution(size: int) -> tuple[int, int]:
    """Split an image size into a seed-map size s0 (3..7) and k doublings: size = s0 * 2**k.

    28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4), 48 -> (6, 3).
    """
    k = 0
    while size % 2 == 0 and size // 2 >= 4 and size > 7:
        size //= 2
        k += 1
    if k == 0 or size > 7:
        raise GankitError(f"image size {size * 2 ** k} is not supported by conv models; use a size "
                          "s * 2**k with s from 4 to 7 (e.g. 28, 32, 64, 128)")
    return size, k


class SpatialDropout(nn.Module):
    """Dropout2d (whole feature maps) that can stay active at sampling time, as a noise source."""

    def __init__(self, p: float, at_sampling: bool = True):
        super().__init__()
        self.p, self.at_sampling = p, at_sampling

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0:
            return x
        return F.dropout2d(x, self.p, training=self.training or self.at_sampling)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_sampling={self.at_sampling}"


def init_dcgan_(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def out_activation(is_image: bool) -> nn.Module:
    """tanh for images in [-1, 1]; identity for unbounded 2-D points."""
    return nn.Tanh() if is_image else nn.Identity()
