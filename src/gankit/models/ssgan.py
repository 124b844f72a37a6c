"""The networks of the semi-supervised GAN of Salimans et al. 2016 ("Improved Techniques for Training GANs",
reference code openai/improved-gan), weight-normalised (Salimans & Kingma 2016) with data-dependent init.

ssgan-mlp (their MNIST nets):
  D: pixels -> N(0, 0.3²) noise -> 1000 -> 500 -> 250 -> 250 -> 250, ReLU, N(0, 0.5²) noise after each
     hidden layer, every dense layer weight-normalised; features = the last hidden layer (feature matching);
     K+1 head: noise -> K logits.
  G: z -> 500 -> 500 (softplus, BatchNorm) -> pixels, a weight-normalised sigmoid output (rescaled to [-1, 1]).
ssgan-conv (their CIFAR-10 nets, for 32 px colour data; widths from model.d_width / g_width, 96 / 128 there):
  D: dropout 0.2 -> 3 x conv3x3 w (the last stride 2) -> dropout 0.5 -> 3 x conv3x3 2w (the last stride 2)
     -> dropout 0.5 -> conv3x3 2w (no padding) -> 2 NIN (1x1) layers 2w -> global mean pool; LeakyReLU 0.2,
     every layer weight-normalised; features = the pooled vector.
  G: z -> dense seed map (BatchNorm, ReLU) -> 5x5 transposed convs doubling the size (BatchNorm, ReLU) ->
     a weight-normalised 5x5 transposed conv, tanh.
As in the reference, the lengths g of D's hidden layers are set by the data-dependent init and then fixed
(only their directions v and biases train), so the noise keeps its size relative to the activations; the
output layers' lengths train.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _WeightNorm, weight_norm

from ..config import ModelConfig
from .layers import plan_resolution
from .registry import DISCRIMINATORS, GENERATORS, MODELS

INPUT_NOISE, HIDDEN_NOISE = 0.3, 0.5  # std of the Gaussian noise on the MLP D's input and hidden layers
INPUT_DROPOUT, DROPOUT = 0.2, 0.5  # the conv D's dropout on its input and between its stages
HEAD_INIT_SCALE = 0.1  # std of the output layers' pre-activations after data-dependent init


class GaussianNoise(nn.Module):
    """x + N(0, sigma²) in train mode; the identity in eval mode (test accuracy, classify)."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma > 0 else x

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


def _unit_norms(w: Tensor) -> Tensor:
    """||w|| of each output unit (dim 0), shaped to broadcast against w: [units, 1, ...]."""
    return torch.linalg.vector_norm(w.flatten(1), dim=1).view(-1, *(1,) * (w.dim() - 1))


class FixedLength(nn.Module):
    """Weight normalisation with a fixed length: w = g v / ||v||, g a buffer (set by data-dependent init)."""

    def __init__(self, weight: Tensor):
        super().__init__()
        self.register_buffer("g", _unit_norms(weight.detach()))

    def forward(self, v: Tensor) -> Tensor:
        return v * (self.g / _unit_norms(v))


def wn(layer: nn.Module, init_scale: float = 1.0, train_length: bool = False) -> nn.Module:
    """Weight normalisation w = g v / ||v||, one length g per output unit: trained (torch's weight_norm) or
    fixed after data_dependent_init_ (FixedLength). init_scale: the std the init gives its pre-activations."""
    if train_length:
        layer = weight_norm(layer, dim=1 if isinstance(layer, nn.ConvTranspose2d) else 0)  # dim: output units
    else:
        parametrize.register_parametrization(layer, "weight", FixedLength(layer.weight))
    layer.init_scale = init_scale
    return layer


WEIGHT_NORMS = (_WeightNorm, FixedLength)


def is_weight_normalised(m: nn.Module) -> bool:
    return parametrize.is_parametrized(m, "weight") and isinstance(m.parametrizations.weight[0], WEIGHT_NORMS)


def weight_length(m: nn.Module) -> Tensor:
    """The lengths g of a weight-normalised layer (a parameter, or FixedLength's buffer)."""
    p = m.parametrizations.weight
    return p.original0 if hasattr(p, "original0") else p[0].g


@torch.no_grad()
def data_dependent_init_(net: nn.Module, x: Tensor) -> bool:
    """Salimans & Kingma 2016: one forward pass of `x`, layer by layer; each weight-normalised layer's g and
    bias are set so that its pre-activations have mean 0 and std `init_scale` per unit on this batch. Returns
    False (and runs nothing) for a network without weight-normalised layers."""
    layers = [m for m in net.modules() if is_weight_normalised(m) and m.bias is not None]
    if not layers:
        return False

    def hook(m: nn.Module, inputs, out: Tensor) -> Tensor:
        dims = [0, *range(2, out.dim())]  # all but the unit (channel) axis
        mean, std = out.mean(dims), out.std(dims) + 1e-6  # [units]
        scale = m.init_scale / std
        g = weight_length(m)  # [units, 1, ...]
        g.mul_(scale.view(g.shape))
        m.bias.copy_((m.bias - mean) * scale)
        shape = (1, -1) + (1,) * (out.dim() - 2)
        return (out - mean.view(shape)) * scale.view(shape)  # what the next layers see

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return True


# ---------------------------------------------------------------- the MNIST networks
class SSGANMLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(INPUT_NOISE)]
        width = math.prod(shape)
        for i, h in enumerate(hidden):
            if i > 0:
                layers.append(GaussianNoise(HIDDEN_NOISE))
            layers += [wn(nn.Linear(width, h)), nn.ReLU()]
            width = h
        self.net, self.width = nn.Sequential(*layers), width
        self.head = nn.Sequential(self.class_head(1), nn.Flatten(0))  # [N,F] -> [N] real/fake logit

    def class_head(self, k: int) -> nn.Module:
        """Noise on the last hidden layer, then k weight-normalised outputs (the K+1 GAN's class logits)."""
        return nn.Sequential(GaussianNoise(HIDDEN_NOISE), wn(nn.Linear(self.width, k), HEAD_INIT_SCALE, True))

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)  # [N,width] last hidden layer: what feature matching matches

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


class SSGANMLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], hidden: list[int], batchnorm: bool = True):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, tuple(shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h, bias=not batchnorm), nn.BatchNorm1d(h) if batchnorm else nn.Identity(),
                       nn.Softplus()]
            width = h
        self.net = nn.Sequential(*layers, wn(nn.Linear(width, math.prod(shape)), train_length=True))

    def forward(self, z: Tensor) -> Tensor:
        x = 2 * torch.sigmoid(self.net(z)) - 1  # the paper's sigmoid output, on gankit's [-1, 1] scale
        return x.view(z.shape[0], *self.shape)  # [N,C,H,W]


# ---------------------------------------------------------------- the CIFAR-10 networks
def _conv(cin: int, cout: int, stride: int = 1, padding: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [wn(nn.Conv2d(cin, cout, kernel, stride, padding)), nn.LeakyReLU(0.2)]


class SSGANConvDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int = 96):
        super().__init__()
        w, w2 = width, 2 * width
        self.net = nn.Sequential(
            nn.Dropout(INPUT_DROPOUT),
            *_conv(shape[0], w), *_conv(w, w), *_conv(w, w, stride=2),  # [N,w,H/2,W/2]
            nn.Dropout(DROPOUT),
            *_conv(w, w2), *_conv(w2, w2), *_conv(w2, w2, stride=2),  # [N,2w,H/4,W/4]
            nn.Dropout(DROPOUT),
            *_conv(w2, w2, padding=0),  # [N,2w,H/4-2,W/4-2]
            *_conv(w2, w2, padding=0, kernel=1), *_conv(w2, w2, padding=0, kernel=1))  # network-in-network
        self.width = w2
        self.head = nn.Sequential(self.class_head(1), nn.Flatten(0))  # [N,F] -> [N] real/fake logit

    def class_head(self, k: int) -> nn.Module:
        return wn(nn.Linear(self.width, k), HEAD_INIT_SCALE, True)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x).mean((2, 3))  # [N,2w] global mean pool

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N] logits


class SSGANConvGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int = 128, batchnorm: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        s0, k = plan_resolution(shape[1])
        c = width * 2 ** (k - 1)
        norm = nn.BatchNorm2d if batchnorm else (lambda n: nn.Identity())
        self.seed = nn.Sequential(nn.Linear(latent_dim, c * s0 * s0), nn.BatchNorm1d(c * s0 * s0) if batchnorm
                                  else nn.Identity(), nn.ReLU())
        self.seed_shape = (c, s0, s0)
        layers: list[nn.Module] = []
        for _ in range(k - 1):  # each doubles the size and halves the channels
            layers += [nn.ConvTranspose2d(c, c // 2, 5, 2, 2, output_padding=1), norm(c // 2), nn.ReLU()]
            c //= 2
        layers += [wn(nn.ConvTranspose2d(c, shape[0], 5, 2, 2, output_padding=1), train_length=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.seed(z).view(z.shape[0], *self.seed_shape))  # [N,c,s0,s0] -> [N,C,H,W]


@GENERATORS.register("ssgan-mlp")
def ssgan_mlp_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return SSGANMLPGenerator(cfg.latent_dim, shape, cfg.g_hidden, cfg.g_batchnorm)


@DISCRIMINATORS.register("ssgan-mlp")
def ssgan_mlp_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return SSGANMLPDiscriminator(shape, cfg.d_hidden)


@GENERATORS.register("ssgan-conv")
def ssgan_conv_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return SSGANConvGenerator(cfg.latent_dim, shape, cfg.g_width, cfg.g_batchnorm)


@DISCRIMINATORS.register("ssgan-conv")
def ssgan_conv_discriminator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return SSGANConvDiscriminator(shape, cfg.d_width)


MODELS.register("ssgan-mlp")(("ssgan-mlp", "ssgan-mlp"))
MODELS.register("ssgan-conv")(("ssgan-conv", "ssgan-conv"))

__all__ = ["GaussianNoise", "FixedLength", "wn", "weight_length", "data_dependent_init_", "SSGANMLPDiscriminator",
           "SSGANMLPGenerator", "SSGANConvDiscriminator", "SSGANConvGenerator"]
