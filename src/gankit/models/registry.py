"""Registries of generators, discriminators and the named (G, D) pairs that users pick with --model."""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch
from torch import nn

from ..config import CondConfig, ModelConfig
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


def build_models(cfg: ModelConfig, shape: tuple[int, ...], d_shape: tuple[int, ...] | None = None,
                 cond: Optional[CondConfig] = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for data whose examples have `shape` ((C, H, W) or (2,)); D's input may differ
    (d_shape: PacGAN packs several samples into one D input). With `cond` (labels or InfoGAN codes) the
    registered G and D are wrapped (gankit.models.conditional)."""
    g_name, d_name = MODELS.get(cfg.name)
    g_name, d_name = cfg.g or g_name, cfg.d or d_name
    if len(shape) == 1 and (g_name != "mlp" or d_name not in ("mlp", "attention")):
        raise GankitError(f"model '{cfg.name}' needs images but the data are 2-D points; "
                          "use --model gan-mlp for ring and grid")
    if cond is not None and cond.mode != "none":
        return _build_conditional(cfg, shape, cond, num_classes, g_name, d_name)
    G, D = GENERATORS.get(g_name)(cfg, shape), DISCRIMINATORS.get(d_name)(cfg, d_shape or shape)
    if cfg.virtual_batchnorm:  # reference codes drawn from the global RNG: fixed by the run's seed
        n = cfg.virtual_batch_size
        ref_z = torch.rand(n, cfg.latent_dim) * 2 - 1 if cfg.latent_dist == "uniform" else torch.randn(n, cfg.latent_dim)
        G = use_virtual_batchnorm(G, ref_z)
    return G, D


def _build_conditional(cfg: ModelConfig, shape: tuple, cond: CondConfig, K: int, g_name: str, d_name: str):
    from .conditional import ConditionalDiscriminator, ConditionalGenerator

    d_shape = shape
    if cond.mode in ("cgan", "acgan"):
        g_kind = cond.g
        extra = cond.embed_dim if cond.g == "concat" else 0
        if cond.mode == "cgan" and cond.d == "concat":
            d_shape = (shape[0] + K, *shape[1:])
    elif cond.mode == "infogan":
        g_kind, extra = "codes", sum(cond.cat_codes) + cond.cont_codes
    else:  # ssgan: an unconditional G
        g_kind, extra = None, 0
    G = GENERATORS.get(g_name)(dataclasses.replace(cfg, latent_dim=cfg.latent_dim + extra), shape)
    if g_kind is not None:
        try:
            G = ConditionalGenerator(G, g_kind, max(K, 1), cond.embed_dim, cond.g_classifier and cond.mode == "acgan")
        except ValueError as e:
            raise GankitError(f"{e}; use cond.g=concat or model.g_batchnorm=true") from None
    D = DISCRIMINATORS.get(d_name)(cfg, d_shape)
    d_kind = (cond.d if cond.mode == "cgan" else cond.mode)
    D = ConditionalDiscriminator(D, d_kind, max(K, 1), shape, sum(cond.cat_codes) + cond.cont_codes)
    return G, D
