"""DCGAN (Radford et al. 2016): transposed convolutions, BatchNorm, ReLU in G, LeakyReLU in D, tanh.

Sized from the data: an image of size s0 * 2**k starts G from an s0 x s0 seed map and doubles k times.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from .layers import DHead, SpatialDropout, init_dcgan_, plan_resolution
from .registry import DISCRIMINATORS, GENERATORS


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int = 64, batchnorm: bool = True,
                 dropout: float = 0.0, dropout_at_sampling: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        channels, size = shape[0], shape[1]
        s0, k = plan_resolution(size)
        c = width * 2 ** (k - 1)
        norm = (lambda n: nn.BatchNorm2d(n)) if batchnorm else (lambda n: nn.Identity())
        # z as a [N,Z,1,1] map -> [N,c,s0,s0] seed map
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, c, s0, 1, 0, bias=False), norm(c), nn.ReLU(True)]
        for _ in range(k - 1):  # each block doubles the resolution and halves the channels
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), norm(c // 2), nn.ReLU(True)]
            c //= 2
            if dropout > 0:  # dropout as noise in G (DCGAN tips), optionally kept on at sampling
                layers.append(SpatialDropout(dropout, dropout_at_sampling))
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])  # [N,Z] -> [N,Z,1,1] -> [N,C,H,W]


def conv_body(shape: tuple[int, int, int], width: int, batchnorm: bool) -> tuple[nn.Sequential, int, int]:
    """Strided convs from [N,C,H,W] down to the seed resolution. Returns (body, channels, s0)."""
    s0, k = plan_resolution(shape[1])
    layers: list[nn.Module] = [nn.Conv2d(shape[0], width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    c = width
    for _ in range(k - 1):
        layers.append(nn.Conv2d(c, c * 2, 4, 2, 1, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c * 2))
        layers.append(nn.LeakyReLU(0.2, True))
        c *= 2
    return nn.Sequential(*layers), c, s0


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int = 64, batchnorm: bool = True,
                 minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        self.body, c, s0 = conv_body(shape, width, batchnorm)
        self.head = DHead((c, s0, s0), minibatch_std, mbd_kernels)  # [N,c,s0,s0] -> [N]
        init_dcgan_(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # [N,c,s0,s0]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


@GENERATORS.register("dcgan")
def dcgan_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return DCGANGenerator(cfg.latent_dim, shape, cfg.g_width, cfg.g_batchnorm, cfg.dropout, cfg.dropout_at_sampling)


@DISCRIMINATORS.register("dcgan")
def dcgan_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return DCGANDiscriminator(shape, cfg.d_width, cfg.d_batchnorm, cfg.minibatch_std, cfg.minibatch_discrimination)
