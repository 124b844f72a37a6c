"""A discriminator with an attention module.

After the convolutional body (or an MLP body for 2-D points) and a dense layer giving features f,
dense layers with BatchNorm and LeakyReLU produce a sigmoid gate a in (0, 1); the gated features a * f
and the ungated f are concatenated before the output layer, so D can learn which features to trust.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .dcgan import conv_body
from .layers import DHead, init_dcgan_
from .registry import DISCRIMINATORS


class AttentionGate(nn.Module):
    """f [N,h] -> sigmoid gate [N,h] from Linear-BN-LeakyReLU-Linear-sigmoid."""

    def __init__(self, h: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(h, h), nn.BatchNorm1d(h), nn.LeakyReLU(0.2, True),
                                 nn.Linear(h, h), nn.Sigmoid())

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f)


class AttentionDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int, hidden: int, mlp_hidden: list[int], batchnorm: bool,
                 minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        if len(shape) == 3:
            body, c, s0 = conv_body(shape, width, batchnorm)
            flat = c * s0 * s0
        else:
            layers: list[nn.Module] = []
            flat = math.prod(shape)
            for h in mlp_hidden:
                layers += [nn.Linear(flat, h), nn.LeakyReLU(0.2, True)]
                flat = h
            body = nn.Sequential(*layers)
        self.body = nn.Sequential(body, nn.Flatten(), nn.Linear(flat, hidden), nn.LeakyReLU(0.2, True))
        self.gate = AttentionGate(hidden)
        self.head = DHead((2 * hidden,), minibatch_std, mbd_kernels)
        init_dcgan_(self)

    def features(self, x: Tensor) -> Tensor:
        f = self.body(x)  # [N,h]
        return torch.cat([f, self.gate(f) * f], dim=1)  # [N,2h] ungated | gated

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


@DISCRIMINATORS.register("attention")
def attention_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return AttentionDiscriminator(shape, cfg.d_width, cfg.attention_hidden, cfg.d_hidden, cfg.d_batchnorm,
                                  cfg.minibatch_std, cfg.minibatch_discrimination)
