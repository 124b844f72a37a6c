"""Blocks shared by the model families."""
from __future__ import annotations

import torch
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


class MinibatchStd(nn.Module):
    """Append one feature: the standard deviation of each feature over the batch, averaged (Karras et al.
    2018). Lets D see how varied a batch is. [N,C,H,W] -> [N,C+1,H,W]; [N,F] -> [N,F+1]."""

    def forward(self, x: Tensor) -> Tensor:
        std = x.std(dim=0, unbiased=False).mean()  # scalar over the batch
        extra = std.expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: features f [N,A] times a tensor T [A,B,C] give M [N,B,C]; for each kernel b,
    o_b(x_i) = sum_{j != i} exp(-||M_ib - M_jb||_1). Returns [N, A+B] = f | o."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 16):
        super().__init__()
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)
        self.kernels, self.kernel_dim = kernels, kernel_dim

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim).transpose(0, 1)  # [B,N,C]
        # pairwise L1 per kernel, [B,N,N], without materialising the [N,N,B,C] differences
        l1 = torch.cdist(m.contiguous(), m.contiguous(), p=1)
        o = (torch.exp(-l1).sum(2) - 1).transpose(0, 1)  # [N,B], minus the i == j term exp(0) = 1
        return torch.cat([f, o], dim=1)


class DHead(nn.Module):
    """D's output layer over features of shape (C, H, W) or (F,), with the optional batch-level layers
    (minibatch standard deviation, minibatch discrimination) in front of it. Returns [N] logits."""

    def __init__(self, feat_shape: tuple[int, ...], minibatch_std: bool = False, mbd_kernels: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        shape = tuple(feat_shape)
        if minibatch_std:
            layers.append(MinibatchStd())
            shape = (shape[0] + 1, *shape[1:])
        if len(shape) == 3 and not mbd_kernels:
            layers.append(nn.Conv2d(shape[0], 1, shape[1], 1, 0))  # [N,C,s0,s0] -> [N,1,1,1]
        else:
            layers.append(nn.Flatten())
            width = int(torch.tensor(shape).prod())
            if mbd_kernels:
                layers.append(MinibatchDiscrimination(width, mbd_kernels))
                width += mbd_kernels
            layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f).flatten()  # [N]


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalization (Salimans et al. 2016): each example is normalised with the statistics
    of a reference batch, fixed at the start of training, together with the example itself, so an
    example's output does not depend on the other examples of its batch.

    The reference statistics are recomputed at every forward of the generator (its weights change),
    by `VirtualBatchNormGenerator`, which runs the reference batch first.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.collect = False  # True while the reference batch passes
        self.ref: tuple[Tensor, Tensor, int] | None = None  # mean, mean of squares [C], size

    def forward(self, x: Tensor) -> Tensor:  # [N, C] or [N, C, H, W]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        spatial = tuple(range(2, x.dim()))
        if self.collect:  # reference batch: its own batch statistics, remembered for the real pass
            mean, meansq = x.mean((0,) + spatial), x.pow(2).mean((0,) + spatial)
            self.ref = (mean, meansq, x.shape[0])
        else:
            if self.ref is None:
                raise RuntimeError("VirtualBatchNorm needs a reference pass first (wrap G in "
                                   "VirtualBatchNormGenerator)")
            ref_mean, ref_meansq, n = self.ref
            ex_mean = x.mean(spatial, keepdim=True) if spatial else x  # per example and channel
            ex_meansq = x.pow(2).mean(spatial, keepdim=True) if spatial else x.pow(2)
            w = 1.0 / (n + 1)  # the example counts as one more member of the reference batch
            mean = w * ex_mean + (1 - w) * ref_mean.view(shape)
            meansq = w * ex_meansq + (1 - w) * ref_meansq.view(shape)
            var = (meansq - mean.pow(2)).clamp_min(0)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)
        var = (meansq - mean.pow(2)).clamp_min(0)
        return ((x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps) * self.weight.view(shape)
                + self.bias.view(shape))


class VirtualBatchNormGenerator(nn.Module):
    """A generator whose BatchNorm layers became VirtualBatchNorm, with its reference codes (a buffer:
    saved in checkpoints, so sampling after training uses the same reference batch). Costs one extra
    forward of the reference batch per call."""

    def __init__(self, net: nn.Module, ref_z: Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("ref_z", ref_z)

    def forward(self, z: Tensor) -> Tensor:
        vbns = [m for m in self.net.modules() if isinstance(m, VirtualBatchNorm)]
        for m in vbns:
            m.collect = True
        self.net(self.ref_z.to(z.dtype))
        for m in vbns:
            m.collect = False
        try:
            return self.net(z)
        finally:
            for m in vbns:
                m.ref = None


def use_virtual_batchnorm(G: nn.Module, ref_z: Tensor) -> nn.Module:
    """Replace every BatchNorm of G by VirtualBatchNorm and bind the reference codes ref_z [R, latent]."""
    def swap(module: nn.Module) -> int:
        count = 0
        for name, child in module.named_children():
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                setattr(module, name, VirtualBatchNorm(child.num_features, child.eps))
                count += 1
            else:
                count += swap(child)
        return count
    if swap(G) == 0:
        raise GankitError("model.virtual_batchnorm needs a generator with BatchNorm layers; "
                          "set model.g_batchnorm=true")
    return VirtualBatchNormGenerator(G, ref_z)
