"""Registries of generators, discriminators and the named (G, D) pairs that users pick with --model."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import GankitError
from ..registry import Registry
from .layers import use_virtual_batchnorm

Builder = Callable[[ModelConfig, tuple], nn.Module]
GENERATORS: Registry[Builder] = Registry("generator")
DISCRIMINATORS: Registry[Builder] = Registry("discriminator")
MODELS: Registry[tuple[str, str]] = Registry("model")

# name users type -> (generator, discriminator)
MODELS.register("gan-mlp")(("mlp", "mlp"))
MODELS.register("dcgan")(("dcgan", "dcgan"))
MODELS.register("resnet-rrb")(("resnet", "dcgan"))
MODELS.register("dcgan-attn")(("dcgan", "attention"))
MODELS.register("resnet-attn")(("resnet", "attention"))
MODELS.register("r3gan")(("r3gan", "r3gan"))
MODELS.register("r3gan-mlp")(("r3gan-mlp", "r3gan-mlp"))


POINT_MODELS = ({"mlp", "r3gan-mlp"}, {"mlp", "attention", "r3gan-mlp"})  # the G and D builders that take 2-D points


def pair_names(cfg: ModelConfig, shape: tuple[int, ...]) -> tuple[str, str]:
    """The registered (G, D) builder names of cfg for examples of `shape`; refuse image models on points."""
    g_name, d_name = MODELS.get(cfg.name)
    g_name, d_name = cfg.g or g_name, cfg.d or d_name
    if len(shape) == 1 and (g_name not in POINT_MODELS[0] or d_name not in POINT_MODELS[1]):
        points = [n for n in MODELS.names() if MODELS.get(n)[0] in POINT_MODELS[0] and MODELS.get(n)[1] in POINT_MODELS[1]]
        raise GankitError(f"model '{cfg.name}' needs images but the data are 2-D points; use --model "
                          f"{' or '.join(points)} for ring and grid (or the presets toy and r3gan-toy)")
    return g_name, d_name


def build_models(cfg: ModelConfig, shape: tuple[int, ...], d_shape: tuple[int, ...] | None = None
                 ) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for data whose examples have `shape` ((C, H, W) or (2,)); D's input may differ
    (d_shape: PacGAN packs several samples into one D input, a cGAN by concatenation adds K channels).
    Labels and InfoGAN codes wrap these (gankit.conditioning)."""
    g_name, d_name = pair_names(cfg, shape)
    G, D = GENERATORS.get(g_name)(cfg, shape), DISCRIMINATORS.get(d_name)(cfg, d_shape or shape)
    if cfg.virtual_batchnorm:  # reference codes drawn from the global RNG: fixed by the run's seed
        n = cfg.virtual_batch_size
        ref_z = torch.rand(n, cfg.latent_dim) * 2 - 1 if cfg.latent_dist == "uniform" else torch.randn(n, cfg.latent_dim)
        G = use_virtual_batchnorm(G, ref_z)
    return G, D
