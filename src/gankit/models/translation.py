"""Image-to-image networks: Pix2Pix's U-Net and PatchGAN (Isola et al. 2017), CycleGAN's ResNet
generator (Zhu et al. 2017; Johnson et al. 2016)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..errors import GankitError
from ..registry import Registry
from .layers import init_dcgan_

NORMS = {"batch": nn.BatchNorm2d, "none": lambda c: nn.Identity(),
         "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)}


SHIFTS = {"batch"}  # norms with their own learned shift: the conv before them needs no bias


def _norm(kind: str, channels: int) -> nn.Module:
    return NORMS[kind](channels)


class AlwaysDropout(nn.Module):
    """Dropout that stays on at test time: Pix2Pix's only source of noise."""

    def __init__(self, p: float, at_sampling: bool = True):
        super().__init__()
        self.p, self.at_sampling = p, at_sampling

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_sampling) if self.p > 0 else x


class UNetGenerator(nn.Module):
    """Encoder of stride-2 convs down to 1x1, decoder of transposed convs back, each decoder layer fed
    the mirrored encoder layer's output (skip connections). Channels ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...
    Dropout (0.5) on the three decoder layers after the bottleneck (at least one on small images)."""

    def __init__(self, in_ch: int, out_ch: int, size: int, ngf: int = 64, norm: str = "batch",
                 dropout: float = 0.5, dropout_at_sampling: bool = True):
        super().__init__()
        n = int(math.log2(size))
        if 2 ** n != size or size < 16:
            raise GankitError(f"the U-Net needs a power-of-two image size of 16 or more, got {size}; "
                              "use --image-size 32, 64, 128 or 256")
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(n)]  # encoder outputs, down to 1x1
        self.down = nn.ModuleList()
        prev = in_ch
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(prev, w, 4, 2, 1, bias=norm not in SHIFTS or i == 0 or i == n - 1))
            if 0 < i < n - 1:
                layers.append(_norm(norm, w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        n_drop = max(1, min(3, n - 2))
        for j in range(n):
            i = n - 1 - j  # mirrored encoder level
            cin = widths[i] * (1 if j == 0 else 2)
            last = i == 0
            cout = out_ch if last else widths[i - 1]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last or norm not in SHIFTS)]
            if not last:
                layers.append(_norm(norm, cout))
                if 1 <= j <= n_drop and dropout > 0:
                    layers.append(AlwaysDropout(dropout, dropout_at_sampling))
            self.up.append(nn.Sequential(*layers))
        init_dcgan_(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
        h = skips.pop()  # the 1x1 bottleneck
        for j, u in enumerate(self.up):
            if j > 0:
                h = torch.cat([h, skips.pop()], dim=1)
            h = u(h)
        return torch.tanh(h)


def receptive_field(layers: int) -> int:
    """Receptive field in pixels of a PatchGAN with `layers` stride-2 convs (3 -> 70, 2 -> 34, 1 -> 16)."""
    strides = [2] * layers + [1, 1]
    rf, jump = 1, 1
    for s in strides:
        rf += 3 * jump
        jump *= s
    return rf


class PatchDiscriminator(nn.Module):
    """PatchGAN: a fully convolutional D whose output is a map of real/fake logits, one per overlapping
    patch of receptive_field(layers) pixels (70x70 with 3 layers)."""

    def __init__(self, in_ch: int, ndf: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for i in range(1, layers):
            nc = ndf * min(2 ** i, 8)
            seq += [nn.Conv2d(c, nc, 4, 2, 1, bias=norm not in SHIFTS), _norm(norm, nc), nn.LeakyReLU(0.2, True)]
            c = nc
        nc = ndf * min(2 ** layers, 8)
        seq += [nn.Conv2d(c, nc, 4, 1, 1, bias=norm not in SHIFTS), _norm(norm, nc), nn.LeakyReLU(0.2, True),
                nn.Conv2d(nc, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)
        init_dcgan_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # [N,1,h,w] patch logits


class ResidualBlock(nn.Module):
    def __init__(self, c: int, norm: str):
        super().__init__()
        self.block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(norm, c), nn.ReLU(True),
                                   nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(norm, c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetTranslator(nn.Module):
    """CycleGAN's generator: c7s1-ngf, d2ngf, d4ngf, `blocks` residual blocks, u2ngf, ungf, c7s1-out, tanh
    (9 blocks at 256 px, 6 at 128 px and below in the paper)."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int = 64, blocks: int = 9, norm: str = "instance"):
        super().__init__()
        seq: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), _norm(norm, ngf), nn.ReLU(True)]
        c = ngf
        for _ in range(2):
            seq += [nn.Conv2d(c, c * 2, 3, 2, 1), _norm(norm, c * 2), nn.ReLU(True)]
            c *= 2
        seq += [ResidualBlock(c, norm) for _ in range(blocks)]
        for _ in range(2):
            seq += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), _norm(norm, c // 2), nn.ReLU(True)]
            c //= 2
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_ch, 7), nn.Tanh()]
        self.net = nn.Sequential(*seq)
        init_dcgan_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass(frozen=True)
class Translator:
    """One image-to-image family: its networks, whether its data are paired, its default normalisation and
    which generator translates each way."""
    build: Callable[[Config, int, int, str], dict[str, nn.Module]]  # (cfg, channels, size, norm) -> nets by name
    paired: bool
    norm: str
    directions: dict[str, str]  # --direction -> the generator's name
    probabilities: bool  # D's outputs are probabilities (BCE), not least-squares scores


def _pix2pix(cfg: Config, channels: int, size: int, norm: str) -> dict[str, nn.Module]:
    m, i = cfg.model, cfg.i2i
    return {"G": UNetGenerator(channels, channels, size, m.g_width, norm, 0.5, m.dropout_at_sampling),
            "D": PatchDiscriminator(2 * channels, m.d_width, i.patch_layers, norm)}


def _cyclegan(cfg: Config, channels: int, size: int, norm: str) -> dict[str, nn.Module]:
    m, i = cfg.model, cfg.i2i
    return {"G_AB": ResnetTranslator(channels, channels, m.g_width, i.res_blocks, norm),
            "G_BA": ResnetTranslator(channels, channels, m.g_width, i.res_blocks, norm),
            "D_A": PatchDiscriminator(channels, m.d_width, i.patch_layers, norm),
            "D_B": PatchDiscriminator(channels, m.d_width, i.patch_layers, norm)}


TRANSLATORS: Registry[Translator] = Registry("image-to-image model")
TRANSLATORS.register("pix2pix")(Translator(_pix2pix, paired=True, norm="batch", directions={"AtoB": "G"},
                                           probabilities=True))
TRANSLATORS.register("cyclegan")(Translator(_cyclegan, paired=False, norm="instance",
                                            directions={"AtoB": "G_AB", "BtoA": "G_BA"}, probabilities=False))


def build_translators(cfg: Config, channels: int, size: int) -> dict[str, nn.Module]:
    """The networks of a translation run, by name: pix2pix {G, D}; cyclegan {G_AB, G_BA, D_A, D_B}."""
    family = TRANSLATORS.get(cfg.model.name)
    return family.build(cfg, channels, size, family.norm if cfg.i2i.norm == "auto" else cfg.i2i.norm)


def translate_batch(nets: dict, cfg: Config, x: Tensor, direction: str = "AtoB") -> Tensor:
    """Images [N,C,H,W] in [-1, 1] of domain A (AtoB) or B (BtoA), translated."""
    ways = TRANSLATORS.get(cfg.model.name).directions
    if direction not in ways:
        raise GankitError(f"a {cfg.model.name} run translates {' and '.join(ways)} only; use --direction "
                          f"{next(iter(ways))}")
    return nets[ways[direction]](x)
