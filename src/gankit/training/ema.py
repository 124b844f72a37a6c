"""Exponential moving average of G's weights (used for sampling and evaluation when enabled)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(G: nn.Module) -> nn.Module:
    ema = copy.deepcopy(G)
    ema.requires_grad_(False)
    return ema


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used at the n-th update: min(decay, (1 + n) / (10 + n)). Early on the average follows G
    closely instead of dragging its random initial weights along for ~1/(1 - decay) updates."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def ema_update_(ema: nn.Module, model: nn.Module, decay: float, updates: int | None = None) -> None:
    """ema <- d * ema + (1 - d) * model for parameters (d: `decay`, warmed up over the first updates when
    `updates` is given); buffers (BN statistics) are copied."""
    d = decay if updates is None else ema_decay_at(decay, updates)
    ema_params, params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - d)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
