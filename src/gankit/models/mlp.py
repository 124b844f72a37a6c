"""The MLP GAN of the textbooks (Goodfellow et al. 2014, as in most GAN book chapters).

G: z -> 128 -> 256 -> 512 -> 1024 -> pixels, BatchNorm after all but the first layer, LeakyReLU(0.2), tanh.
D: pixels -> 512 -> 256 -> 1, LeakyReLU(0.2).
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from ..config import ModelConfig
from .layers import DHead, out_activation
from .registry import DISCRIMINATORS, GENERATORS


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], hidden: list[int], batchnorm: bool = True):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, tuple(shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if batchnorm and i > 0:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        layers += [nn.Linear(width, math.prod(shape)), out_activation(len(shape) == 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)  # [N, *shape]


class MLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], hidden: list[int], minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.net = nn.Sequential(*layers)
        self.head = DHead((width,), minibatch_std, mbd_kernels)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)  # [N,width] last hidden layer

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


@GENERATORS.register("mlp")
def mlp_generator(cfg: ModelConfig, shape: tuple[int, ...]) -> nn.Module:
    return MLPGenerator(cfg.latent_dim, shape, cfg.g_hidden, cfg.g_batchnorm)


@DISCRIMINATORS.register("mlp")
def mlp_discriminator(cfg: ModelConfig, shape: tuple[int, ...]) -> nn.Module:
    return MLPDiscriminator(shape, cfg.d_hidden, cfg.minibatch_std, cfg.minibatch_discrimination)
