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
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)  # [N,C,H*W]
    out = x.flatten(2).gather(2, idx).view_as(x)  # [N,C,H,W]
    return out * valid


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of ratio * size per image at a random position."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = torch.randint(0, h + 1, (n, 1, 1), device=x.device) - ch // 2  # top-left corner; may hang over
    x0 = torch.randint(0, w + 1, (n, 1, 1), device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)  # [1,H,1]
    xs = torch.arange(w, device=x.device).view(1, 1, w)  # [1,1,W]
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
    """The function applied to every D input at this step (augment, add noise, pack), or None."""
    policies = [AUGMENTS[p] for p in ("color", "translation", "cutout") if p in tech.diffaugment.split(",")]
    sigma = tech.instance_noise * max(0.0, 1.0 - step / max(tech.instance_noise_steps, 1))
    if not policies and sigma == 0 and tech.pack == 1:
        return None

    def view(x: Tensor) -> Tensor:
        for f in policies:
            x = f(x)
        x = x + sigma * torch.randn_like(x) if sigma > 0 else x
        return pack(x, tech.pack)

    return view


def apply_spectral_norm(D: nn.Module) -> nn.Module:
    """Spectral normalization on every conv and linear layer of D."""
    for module in list(D.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module)
    return D


def trained_networks(cfg, ckpt: dict, ema: bool = False) -> tuple[nn.Module, nn.Module, object]:
    """(G, D, conditioning) of a GAN checkpoint, built as training built them (packing, spectral norm) and loaded
    with its weights; G's EMA weights with `ema` when the run kept them. On the CPU, in train mode."""
    from ..conditioning import mode_of

    cond = mode_of(cfg.cond, ckpt.get("num_classes", 0))
    shape = tuple(ckpt["shape"])
    G, D = cond.build(cfg.model, shape, packed_shape(shape, cfg.tech.pack))
    if cfg.tech.spectral_norm:  # the saved weights are those of a spectrally normalised D
        apply_spectral_norm(D)
    G.load_state_dict(ckpt.get("G_ema") or ckpt["G"] if ema else ckpt["G"])
    D.load_state_dict(ckpt["D"])
    return G, D, cond


def gate_closed(tech: TechConfig, stats: dict[str, Tensor]) -> bool:
    """The generator-update gate: True (skip G) while D(x) - D(G(z)) exceeds tech.g_gate."""
    if tech.g_gate is None:
        return False
    return float(stats["d_real"] - stats["d_fake"]) > tech.g_gate


def pack(x: Tensor, m: int) -> Tensor:
    """PacGAN: group m consecutive samples into one D input. [N,C,H,W] -> [N/m, m*C, H, W]; [N,F] -> [N/m, m*F]."""
    if m == 1:
        return x
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])  # [N/m, m*C, ...]


def packed_shape(shape: tuple[int, ...], m: int) -> tuple[int, ...]:
    return (shape[0] * m, *shape[1:])


class ReplayBuffer(nn.Module):
    """Experience replay: D sees a share of old fakes again (a FIFO of `size` samples, kept in checkpoints).
    The classes or codes each fake was made with are stored beside it, so a class-conditional D, AC-GAN's
    class head or InfoGAN's Q head are trained on the targets the old fakes really had."""

    def __init__(self, size: int, ratio: float, shape: tuple[int, ...], y_like: Optional[Tensor] = None):
        super().__init__()
        self.ratio = ratio
        self.register_buffer("items", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # samples pushed so far
        ys = None if y_like is None else torch.zeros(size, *y_like.shape[1:], dtype=y_like.dtype)
        self.register_buffer("ys", ys)

    @torch.no_grad()
    def mix(self, fake: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """Replace a `ratio` share of the fake batch (and of its classes or codes y) with stored ones, then
        store the new ones."""
        size, filled = len(self.items), int(min(self.count, len(self.items)))
        out, out_y = fake, y
        k = int(self.ratio * len(fake))
        if filled >= k > 0:
            idx = torch.randint(0, filled, (k,), device=fake.device)
            out = torch.cat([self.items[idx], fake[k:]])
            out_y = None if y is None else torch.cat([self.ys[idx], y[k:]])
        pos = (int(self.count) + torch.arange(len(fake), device=fake.device)) % size
        self.items[pos[-size:]] = fake[-size:].detach()
        if y is not None:
            self.ys[pos[-size:]] = y[-size:]
        self.count += len(fake)
        return out, out_y


class HistoricalAverage(nn.Module):
    """Salimans et al. 2016: penalty ||theta - (1/t) sum_i theta_i||^2 against the running mean of past weights."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.params = [p for p in net.parameters() if p.requires_grad]
        for i, p in enumerate(self.params):
            self.register_buffer(f"avg{i}", p.detach().clone())
        self.register_buffer("t", torch.ones((), dtype=torch.long))

    def averages(self) -> list[Tensor]:
        return [getattr(self, f"avg{i}") for i in range(len(self.params))]

    def penalty(self) -> Tensor:
        return sum(((p - a) ** 2).sum() for p, a in zip(self.params, self.averages()))

    @torch.no_grad()
    def update(self) -> None:
        self.t += 1
        for p, a in zip(self.params, self.averages()):
            a.add_((p - a) / self.t)
