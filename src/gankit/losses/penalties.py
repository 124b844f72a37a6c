"""Regularisers that act on D around the adversarial loss."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates.

    real, fake: [N, ...] batches (fake detached). One mixing weight per sample.
    """
    with torch.autocast(real.device.type, enabled=False):  # float32 even under mixed precision
        real, fake = real.float(), fake.float()
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        norm = grad.flatten(1).norm(2, dim=1)  # [N]
        return (norm - 1).pow(2).mean()


@torch.no_grad()
def clip_weights_(D: nn.Module, c: float) -> None:
    """WGAN (Arjovsky et al. 2017): clamp every parameter of the critic to [-c, c]."""
    for p in D.parameters():
        p.clamp_(-c, c)


def r1_penalty(D: nn.Module, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real data; the loop weighs it by gamma / 2."""
    with torch.autocast(real.device.type, enabled=False):  # float32 even under mixed precision
        x = real.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return grad.flatten(1).pow(2).sum(1).mean()  # [N, C*H*W] -> E ||grad||^2
