"""Techniques that change what D sees or how the loop steps (the losses stay pure functions).

- DiffAugment (Zhao et al. 2020): the same differentiable augmentation of real and fake images for every
  D input, in both the D and the G step: translation (shift up to 1/8 of the size, zero padding),
  cutout (one square of half the size zeroed), color (random brightness, saturation, contrast).
- Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise on every D input, its std
  annealed linearly to 0.
- Spectral normalization of D (Miyato et al. 2018).
- The generator-update gate: skip G's update while D's gap mean D(x) - mean D(G(z)) exceeds a threshold.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TechConfig


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * size pixels in x and y; uncovered pixels become 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy  # [N,H,1] source rows
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx  # [N,1,W] source columns
    valid = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)  # [N,1,H,W]
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    out = x.flatten(2).gather(2, idx).view_as(x)  # [N,C,H,W]
    return out * valid


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of ratio * size per image at a random position."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = torch.randint(0, h + 1, (n, 1, 1), device=x.device) - ch // 2  # top-left corner; may hang over
    x0 = torch.randint(0, w + 1, (n, 1, 1), device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)  # [N,H,W]
    return x * (~inside).unsqueeze(1)


def color(x: Tensor) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean


AUGMENTS = {"color": color, "translation": translation, "cutout": cutout}


def make_view(tech: TechConfig, step: int) -> Optional[Callable[[Tensor], Tensor]]:
    """The function applied to every D input at this step, or None when no technique changes it."""
    policies = [AUGMENTS[p] for p in ("color", "translation", "cutout") if p in tech.diffaugment.split(",")]
    sigma = tech.instance_noise * max(0.0, 1.0 - step / max(tech.instance_noise_steps, 1))
    if not policies and sigma == 0:
        return None

    def view(x: Tensor) -> Tensor:
        for f in policies:
            x = f(x)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

    return view


def apply_spectral_norm(D: nn.Module) -> nn.Module:
    """Spectral normalization on every conv and linear layer of D."""
    for name, module in list(D.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module)
    return D


def gate_closed(tech: TechConfig, stats: dict[str, Tensor]) -> bool:
    """The generator-update gate: True (skip G) while D(x) - D(G(z)) exceeds tech.g_gate."""
    if tech.g_gate is None:
        return False
    return float(stats["d_real"] - stats["d_fake"]) > tech.g_gate
