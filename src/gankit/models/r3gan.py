"""R3GAN networks (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline").

A modernised ResNet without normalisation layers. Each residual block is an inverted bottleneck:
1x1 conv (C -> e*C) - LeakyReLU(0.2) - grouped 3x3 conv - LeakyReLU(0.2) - 1x1 conv (e*C -> C), added to
its input. Fix-up initialisation: the last conv of every block starts at zero (each block is the identity
at step 0) and the others are He-initialised, scaled by L^-0.25 for L residual blocks in the network.
Resolution changes through a fixed [1, 2, 1] low-pass filter: up = nearest x2 then the filter (bilinear
interpolation), down = the filter then stride 2; a 1x1 conv changes the width on the low-resolution side.
G starts from a learned s0 x s0 basis modulated per channel by a linear map of z; D ends in a depthwise conv
over its last s0 x s0 map (one filter per channel) and a linear layer to one logit.

Sized from the data like DCGAN: an image of size s0 * 2**k has k + 1 stages whose widths follow DCGAN's
(model.g_width / d_width at the two finest stages, doubling towards s0). 2-D points: `r3gan-mlp`, the same
residual blocks with dense layers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import GankitError
from .layers import DHead, MinibatchDiscrimination, MinibatchStd, out_activation, plan_resolution
from .registry import DISCRIMINATORS, GENERATORS

LEAK = 0.2
ACT_GAIN = math.sqrt(2 / (1 + LEAK ** 2))  # He gain of LeakyReLU(0.2)
FILTER_TAPS = (1.0, 2.0, 1.0)


def msr_init_(layer: nn.Module, gain: float) -> None:
    """Weights N(0, (gain / sqrt(fan_in))^2) (zero when gain is 0), biases 0."""
    fan_in = layer.weight[0].numel()
    if gain:
        nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    else:
        nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def resample_filter(taps: tuple[float, ...] = FILTER_TAPS) -> Tensor:
    """The separable low-pass filter: the outer product of the taps with themselves, normalised to sum 1."""
    t = torch.tensor(taps)
    k = torch.outer(t, t)
    return k / k.sum()  # [3,3]


class Resample(nn.Module):
    """Doubles (up) or halves (down) H and W through the [1, 2, 1] filter, replicate-padded, so a constant
    image stays constant. Up: nearest x2 then the filter (= bilinear, align_corners=False)."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up
        self.register_buffer("kernel", resample_filter(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        c, pad = x.shape[1], self.kernel.shape[-1] // 2
        weight = self.kernel.to(x.dtype).expand(c, 1, *self.kernel.shape)  # one depthwise filter per channel
        x = F.pad(x, (pad,) * 4, mode="replicate")
        return F.conv2d(x, weight, stride=1 if self.up else 2, groups=c)

    def extra_repr(self) -> str:
        return "up" if self.up else "down"


class ResidualBlock(nn.Module):
    """x + last(act(middle(act(first(x))))): an inverted bottleneck with fix-up initialisation."""

    def __init__(self, first: nn.Module, middle: nn.Module, last: nn.Module, total_blocks: int):
        super().__init__()
        self.net = nn.Sequential(first, nn.LeakyReLU(LEAK), middle, nn.LeakyReLU(LEAK), last)
        gain = ACT_GAIN * total_blocks ** -0.25
        msr_init_(first, gain)
        msr_init_(middle, gain)
        msr_init_(last, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def group_count(channels: int, group_size: int) -> int:
    """Groups of about `group_size` channels that divide `channels` (at least one)."""
    groups = max(1, channels // group_size)
    while channels % groups:
        groups -= 1
    return groups


def conv_block(channels: int, expansion: int, group_size: int, total_blocks: int) -> ResidualBlock:
    hidden = channels * expansion
    return ResidualBlock(nn.Conv2d(channels, hidden, 1),
                         nn.Conv2d(hidden, hidden, 3, 1, 1, groups=group_count(hidden, group_size)),
                         nn.Conv2d(hidden, channels, 1, bias=False), total_blocks)


def dense_block(width: int, expansion: int, total_blocks: int) -> ResidualBlock:
    hidden = width * expansion
    return ResidualBlock(nn.Linear(width, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, width, bias=False),
                         total_blocks)


def transition(cin: int, cout: int, up: bool) -> nn.Module:
    """Between stages: the 1x1 width change happens at the lower resolution (before up, after down)."""
    if cin == cout:
        return Resample(up)
    conv = nn.Conv2d(cin, cout, 1, bias=False)
    msr_init_(conv, 1.0)
    return nn.Sequential(conv, Resample(up)) if up else nn.Sequential(Resample(up), conv)


def stage_widths(width: int, k: int) -> list[int]:
    """Channels of the k + 1 stages from s0 up: width * 2**(k-1), ..., width * 2, width, width."""
    return [width * 2 ** max(k - 1 - i, 0) for i in range(k + 1)]


def check_sizes(blocks: int, expansion: int, group_size: int) -> None:
    if blocks < 0 or expansion < 1 or group_size < 1:
        raise GankitError(f"R3GAN needs model.r3gan_blocks >= 0, r3gan_expansion >= 1 and r3gan_group_size >= 1 "
                          f"(got {blocks}, {expansion}, {group_size})")


class GenerativeBasis(nn.Module):
    """z [N,Z] -> [N,C,s0,s0]: a learned basis, each channel scaled by a linear map of z."""

    def __init__(self, latent_dim: int, channels: int, size: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, size, size))
        self.linear = nn.Linear(latent_dim, channels, bias=False)
        msr_init_(self.linear, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        return self.basis[None] * self.linear(z)[:, :, None, None]


class R3GANGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int = 64, blocks: int = 2,
                 expansion: int = 2, group_size: int = 16):
        super().__init__()
        check_sizes(blocks, expansion, group_size)
        self.latent_dim = latent_dim
        s0, k = plan_resolution(shape[1])
        widths = stage_widths(width, k)
        total = blocks * len(widths)
        self.basis = GenerativeBasis(latent_dim, widths[0], s0)
        layers: list[nn.Module] = []
        for i, c in enumerate(widths):
            if i:
                layers.append(transition(widths[i - 1], c, up=True))
            layers += [conv_block(c, expansion, group_size, total) for _ in range(blocks)]
        self.stages = nn.Sequential(*layers)
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], shape[0], 1), nn.Tanh())
        msr_init_(self.to_image[0], 1.0)

    def forward(self, z: Tensor) -> Tensor:
        return self.to_image(self.stages(self.basis(z)))  # [N,Z] -> [N,c,s0,s0] -> [N,C,H,W]


class R3GANHead(nn.Module):
    """[N,C,s0,s0] -> [N]: depthwise conv over the whole map (one s0 x s0 filter per channel), then a linear
    layer to one logit; the optional minibatch layers of the other D's in front of / after the depthwise conv."""

    def __init__(self, channels: int, size: int, minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        c = channels + int(minibatch_std)
        basis, linear = nn.Conv2d(c, c, size, groups=c, bias=False), nn.Linear(c + mbd_kernels, 1)
        msr_init_(basis, 1.0)
        msr_init_(linear, 1.0)
        mbd = [MinibatchDiscrimination(c, mbd_kernels)] if mbd_kernels else []
        self.net = nn.Sequential(*([MinibatchStd()] if minibatch_std else []), basis, nn.Flatten(), *mbd, linear)

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f).flatten()


class R3GANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int = 64, blocks: int = 2, expansion: int = 2,
                 group_size: int = 16, minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        check_sizes(blocks, expansion, group_size)
        s0, k = plan_resolution(shape[1])
        widths = stage_widths(width, k)[::-1]  # from the full resolution down to s0
        total = blocks * len(widths)
        extract = nn.Conv2d(shape[0], widths[0], 1)
        msr_init_(extract, 1.0)
        layers: list[nn.Module] = [extract]
        for i, c in enumerate(widths):
            layers += [conv_block(c, expansion, group_size, total) for _ in range(blocks)]
            if i < k:
                layers.append(transition(c, widths[i + 1], up=False))
        self.body = nn.Sequential(*layers)
        self.head = R3GANHead(widths[-1], s0, minibatch_std, mbd_kernels)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # [N,c,s0,s0]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


class R3GANMLPGenerator(nn.Module):
    """For 2-D points (and flat images): z -> width, dense residual blocks, -> the example's values."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int = 64, blocks: int = 2, expansion: int = 2):
        super().__init__()
        check_sizes(blocks, expansion, 1)
        self.latent_dim, self.shape = latent_dim, tuple(shape)
        first, last = nn.Linear(latent_dim, width), nn.Linear(width, math.prod(shape))
        msr_init_(first, 1.0)
        msr_init_(last, 1.0)
        self.net = nn.Sequential(first, *[dense_block(width, expansion, blocks) for _ in range(blocks)], last,
                                 out_activation(len(shape) == 3))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)  # [N, *shape]


class R3GANMLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int = 64, blocks: int = 2, expansion: int = 2,
                 minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        check_sizes(blocks, expansion, 1)
        first = nn.Linear(math.prod(shape), width)
        msr_init_(first, 1.0)
        self.body = nn.Sequential(nn.Flatten(), first, *[dense_block(width, expansion, blocks) for _ in range(blocks)])
        self.head = DHead((width,), minibatch_std, mbd_kernels)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # [N,width]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits




@GENERATORS.register("r3gan")
def r3gan_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return R3GANGenerator(cfg.latent_dim, shape, cfg.g_width, cfg.r3gan_blocks, cfg.r3gan_expansion,
                          cfg.r3gan_group_size)


@DISCRIMINATORS.register("r3gan")
def r3gan_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return R3GANDiscriminator(shape, cfg.d_width, cfg.r3gan_blocks, cfg.r3gan_expansion, cfg.r3gan_group_size,
                              cfg.minibatch_std, cfg.minibatch_discrimination)


@GENERATORS.register("r3gan-mlp")
def r3gan_mlp_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return R3GANMLPGenerator(cfg.latent_dim, shape, cfg.g_width, cfg.r3gan_blocks, cfg.r3gan_expansion)


@DISCRIMINATORS.register("r3gan-mlp")
def r3gan_mlp_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return R3GANMLPDiscriminator(shape, cfg.d_width, cfg.r3gan_blocks, cfg.r3gan_expansion, cfg.minibatch_std,
                                 cfg.minibatch_discrimination)
