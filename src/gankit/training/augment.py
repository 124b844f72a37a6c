"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): every image D sees, real or fake, in the D step, the G step and the gradient penalties, goes
through a pipeline of differentiable augmentations; each op acts on each sample with probability p, and p
follows the overfitting heuristic r_t = E[sign(D(x_train))] towards a target.

The ops (ADA's defaults for "bgc", the pipeline its paper found best, plus cutout), in the order applied:
    xflip      mirror left-right                              parameter: flip or not, 1/2 each
    rotate90   0, 90, 180 or 270 degrees (square images)      parameter: k ~ U{0, 1, 2, 3}
    translate  integer shift of up to 1/8 of the size, reflect padding
    scale      isotropic zoom 2^N(0, 0.2^2)                    } one bilinear resampling,
    aniso      x zoomed by 2^N(0, 0.2^2), y by its inverse     } reflect padding
    brightness + N(0, 0.2^2)                                   (images in [-1, 1])
    contrast   x 2^N(0, 0.5^2) about mid-grey
    saturation x 2^N(0, 1) away from each pixel's grey (colour images only; grey ones are left as they are)
    cutout     a square of half the size set to mid-grey (opt-in: tech.ada_ops)
xflip, rotate90 and translate only move pixels: they are composed into one index map and one gather (exact).

Why it does not leak (ADA section 2.2): an op applied with probability p draws its parameter from a
distribution that includes the identity (k = 0, no flip, shift 0, zoom 1, ...). For p < 1 the identity stays
the most likely outcome, so the augmented distribution of images determines the clean one: G is rewarded
only for matching the clean distribution and does not learn to produce augmented-looking images. That holds
for every p < 1 in the limit; in ADA's finite experiments (its Fig. 3) rotations and flips began to leak
above p ~ 0.8, so a log where p climbs past 0.8 means: too little data for this target, or raise the target.

The controller (ADA's): every `interval` D steps, r_t is the mean sign of D's outputs on the augmented real
images of those steps, and p += sign(r_t - target) * batch * interval / speed_images, clamped to [0, 1). With a
fixed p (tech.ada_p and no target) r_t is still measured and logged.

Gradient penalties (R1, R2, WGAN-GP) are taken at the augmented images D saw, with respect to them; StyleGAN2-ADA
differentiates through the pipeline back to the clean image instead. The two agree for the pixel moves (up to
the reflected border) and differ by the zoom's and the contrast's factors for the others.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config_check import ADA_OPS as OPS
from ..errors import GankitError
from ..schedules import endpoints, is_scheduled, value_at

TRANSLATE_MAX = 0.125  # ADA's xint_max: shift of up to 1/8 of the size
SCALE_STD = ANISO_STD = 0.2  # log2 of the zoom
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0
CUTOUT_SIZE = 0.5
P_MAX = 1.0 - 1e-6  # p is clamped to [0, 1)
# D's output is split into "real" and "fake" at this value: logits (BCE, hinge) at 0, least squares (targets
# 0 and 1) at 0.5. Losses not listed (WGAN, relativistic) have no such midpoint: fixed p only.
RT_THRESHOLDS = {"minimax": 0.0, "nonsat": 0.0, "hinge": 0.0, "lsgan": 0.5}
ADA_KEYS = ("ada_target", "ada_p", "ada_interval", "ada_speed_images", "ada_ops")  # config keys (section tech)


def _reflect(i: Tensor, n: int) -> Tensor:
    """Indices mirrored back into [0, n) at the borders (reflect padding: the edge pixel is not repeated)."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _draw(n: int, p: Tensor, device) -> Tensor:
    """[N] bool: which samples an op acts on (each with probability p)."""
    return torch.rand(n, device=device) < p


def _pixel_moves(x: Tensor, p: Tensor, has: dict) -> Tensor:
    """xflip, then rotate90, then translate, as one index map: out[pixel] = x[source(pixel)], one gather."""
    n, c, h, w = x.shape
    dev = x.device
    idx = torch.arange(h * w, device=dev).expand(n, -1)  # [N, H*W] output pixels, flat
    if has["translate"]:  # source = output - shift, mirrored at the borders
        on = _draw(n, p, dev)
        shift = ((torch.rand(n, 2, device=dev) * 2 - 1) * TRANSLATE_MAX * torch.tensor([h, w], device=dev)).round()
        shift = (shift * on[:, None]).long()  # [N, 2] (dy, dx); 0 where the op is off
        ys = _reflect(torch.arange(h, device=dev) - shift[:, :1], h)  # [N, H] source rows
        xs = _reflect(torch.arange(w, device=dev) - shift[:, 1:], w)  # [N, W] source columns
        idx = (ys[:, :, None] * w + xs[:, None, :]).view(n, h * w)
    k = torch.zeros(n, dtype=torch.long, device=dev)  # [N] quarter-turns
    if has["rotate90"]:
        k = torch.randint(0, 4, (n,), device=dev) * _draw(n, p, dev)  # 0 where off
    flip = torch.zeros(n, dtype=torch.long, device=dev)
    if has["xflip"]:
        flip = (_draw(n, p, dev) & (torch.rand(n, device=dev) < 0.5)).long()  # [N]
    if has["rotate90"] or has["xflip"]:
        grid = torch.arange(h * w, device=dev).view(h, w)
        maps = torch.stack([torch.rot90(g, i, (0, 1)).flatten() for g in (grid, grid.flip(1)) for i in range(4)])
        idx = maps[flip * 4 + k].gather(1, idx)  # maps[4f + k]: where rot90(flip^f(x), k) takes each pixel from
    src = idx[:, None].expand(-1, c, -1)  # [N, C, H*W]
    return x.flatten(2).gather(2, src).view(n, c, h, w)


def _zoom(x: Tensor, p: Tensor, has: dict) -> Tensor:
    """Isotropic and anisotropic scaling: one bilinear resampling with reflect padding."""
    n, dev = x.shape[0], x.device
    log2 = torch.zeros(n, 2, device=dev)  # [N, 2] log2 zoom of x and y
    on = torch.zeros(n, dtype=torch.bool, device=dev)
    for name, std, signs in (("scale", SCALE_STD, (1.0, 1.0)), ("aniso", ANISO_STD, (1.0, -1.0))):
        if has[name]:
            hit = _draw(n, p, dev)
            log2 = log2 + (torch.randn(n, 1, device=dev) * std * hit[:, None]) * torch.tensor(signs, device=dev)
            on = on | hit
    h, w = x.shape[2:]
    inv = torch.exp2(-log2)  # [N, 2] output -> input coordinates (a diagonal affine_grid, without its bmm)
    gx = ((torch.arange(w, device=dev) * 2 + 1) / w - 1).view(1, 1, w) * inv[:, 0].view(n, 1, 1)  # [N, 1, W]
    gy = ((torch.arange(h, device=dev) * 2 + 1) / h - 1).view(1, h, 1) * inv[:, 1].view(n, 1, 1)  # [N, H, 1]
    grid = torch.stack([gx.expand(n, h, w), gy.expand(n, h, w)], dim=3)  # [N, H, W, 2] pixel centres (x, y)
    zoomed = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=False)
    return torch.where(on[:, None, None, None], zoomed, x)  # untouched samples stay exact


def _lognormal(n: int, p: Tensor, std: float, dev) -> Tensor:
    """[N, 1, 1, 1] factors 2^N(0, std^2) where the op acts, else exactly 1."""
    on = _draw(n, p, dev)
    return torch.where(on, torch.exp2(torch.randn(n, device=dev) * std), torch.ones(n, device=dev)).view(n, 1, 1, 1)


def _colour(x: Tensor, p: Tensor, has: dict, channels: int) -> Tensor:
    n, dev = x.shape[0], x.device
    if has["brightness"]:
        x = x + (torch.randn(n, device=dev) * BRIGHTNESS_STD * _draw(n, p, dev)).view(n, 1, 1, 1).to(x.dtype)
    if has["contrast"]:  # about 0: mid-grey of images in [-1, 1]
        x = x * _lognormal(n, p, CONTRAST_STD, dev).to(x.dtype)
    if has["saturation"] and channels == 3:  # grey images have no saturation to change
        g = x.view(n, -1, 3, *x.shape[2:])  # [N, groups, 3, H, W]: an image-to-image pair is two RGB images
        grey = g.mean(dim=2, keepdim=True)
        on = _draw(n, p, dev).view(n, 1, 1, 1, 1)
        factor = torch.exp2(torch.randn(n, 1, 1, 1, 1, device=dev) * SATURATION_STD).to(x.dtype)
        x = torch.where(on, grey + (g - grey) * factor, g).view_as(x)  # untouched samples stay exact
    return x


def _cutout(x: Tensor, p: Tensor) -> Tensor:
    n, _, h, w = x.shape
    dev = x.device
    centre = torch.rand(n, 2, 1, 1, device=dev)  # [N, 2, 1, 1] centre of the square, in [0, 1)
    ys = (torch.arange(h, device=dev).view(1, h, 1) + 0.5) / h  # [1, H, 1] pixel centres
    xs = (torch.arange(w, device=dev).view(1, 1, w) + 0.5) / w
    inside = ((ys - centre[:, 0]).abs() < CUTOUT_SIZE / 2) & ((xs - centre[:, 1]).abs() < CUTOUT_SIZE / 2)
    inside = inside & _draw(n, p, dev).view(n, 1, 1)  # [N, H, W]
    return x * (~inside).unsqueeze(1).to(x.dtype)


def augment(x: Tensor, p: Tensor | float, ops: tuple[str, ...], channels: int = 0) -> Tensor:
    """The ADA pipeline on a batch [N, C, H, W] in [-1, 1]: each op of `ops` acts on each sample with
    probability p. channels: channels per image (saturation works on groups of 3; an image-to-image pair
    [A | B] stacked along channels is one sample: every op moves both halves alike). Differentiable in x."""
    p = torch.as_tensor(p, device=x.device)
    has = {name: name in ops for name in OPS}
    if has["xflip"] or has["rotate90"] or has["translate"]:
        x = _pixel_moves(x, p, has)
    if has["scale"] or has["aniso"]:
        x = _zoom(x, p, has)
    x = _colour(x, p, has, channels or x.shape[1])
    return _cutout(x, p) if has["cutout"] else x


class AdaptiveAugment:
    """The pipeline with its probability p (a tensor on the device: no host synchronisation per step) and ADA's
    controller. observe() once per D step with the mean sign of D's outputs on the (augmented) real batch."""

    def __init__(self, tech, shape: tuple[int, ...], batch: int, device: torch.device,
                 threshold: Optional[float], channels: int = 0, reduce: Optional[Callable] = None):
        self.ops = tuple(o for o in tech.ada_ops.split(",") if o)
        if self.ops.count("rotate90") and shape[-1] != shape[-2]:
            raise GankitError(f"tech.ada_ops rotate90 needs square images, not {shape[-2]}x{shape[-1]}; "
                              "remove rotate90 from tech.ada_ops")
        self.target, self.interval, self.channels = tech.ada_target, tech.ada_interval, channels
        self.step_size = batch * tech.ada_interval / tech.ada_speed_images  # p's change per adjustment
        self.threshold, self.reduce = threshold, reduce
        self.p = torch.tensor(float(value_at(tech.ada_p)), device=device)
        self.schedule = tech.ada_p if self.target is None and is_scheduled(tech.ada_p) else None
        self.signs = torch.zeros((), device=device)  # sum of the batches' mean signs since the last adjustment
        self.rt = torch.zeros((), device=device)  # r_t of the last completed interval
        self.steps, self.measured = 0, False  # D steps in this interval; whether rt holds a measurement

    def __call__(self, x: Tensor) -> Tensor:
        return augment(x, self.p, self.ops, self.channels)

    def view(self, then: Optional[Callable[[Tensor], Tensor]] = None) -> Callable[[Tensor], Tensor]:
        """What D sees: this pipeline, then `then` (DiffAugment, instance noise, packing) when given."""
        return self if then is None else (lambda x: then(self(x)))

    def observe(self, sign: Optional[Tensor]) -> dict[str, Tensor]:
        """After one D step: sign = E[sign(D(x) - threshold)] over its real batch (None: not measured). Adjusts p
        every `interval` steps. Returns what to log: the p this step used, and r_t once measured."""
        stats = {"ada_p": self.p.detach().clone()}
        if sign is not None:
            self.signs += sign.detach().float()
            self.steps += 1
            if self.steps == self.interval:
                self._adjust()
        if self.measured:
            stats["ada_rt"] = self.rt.clone()
        return stats

    def _adjust(self) -> None:
        rt = self.signs / self.steps
        if self.reduce is not None:  # torchrun: every process takes the same p
            rt = self.reduce({"rt": rt})["rt"]
        self.rt, self.measured = rt, True
        if self.target is not None:
            self.p = (self.p + torch.sign(rt - self.target) * self.step_size).clamp(0.0, P_MAX)
        self.signs, self.steps = torch.zeros_like(self.signs), 0

    def at(self, step: int, images: int) -> None:
        """A scheduled fixed p (tech.ada_p a schedule, no target): its value at this step."""
        if self.schedule is not None:
            self.p.fill_(value_at(self.schedule, step, images))

    def state_dict(self) -> dict:
        return {"p": self.p.cpu(), "signs": self.signs.cpu(), "rt": self.rt.cpu(), "steps": self.steps,
                "measured": self.measured}

    def load_state_dict(self, state: dict) -> None:
        dev = self.p.device
        self.p, self.signs, self.rt = (state[k].to(dev) for k in ("p", "signs", "rt"))
        self.steps, self.measured = state["steps"], state["measured"]


def ada_on(tech) -> bool:
    return tech.ada_target is not None or max(endpoints(tech.ada_p)) > 0


def make_ada(tech, shape: tuple[int, ...], batch: int, device: torch.device, threshold: Optional[float],
             channels: int = 0, dist=None) -> Optional[AdaptiveAugment]:
    """The pipeline and controller of the tech section, or None when adaptive augmentation is off. dist: under
    torchrun, r_t is averaged over the processes so that every one takes the same p."""
    if not ada_on(tech):
        return None
    reduce = dist.mean if dist is not None and dist.active else None
    return AdaptiveAugment(tech, shape, batch, device, threshold, channels, reduce)


def mean_sign(out: Tensor, threshold: Optional[float]) -> Optional[Tensor]:
    """E[sign(out - threshold)] over D's outputs on a real batch (any shape: PatchGAN maps too), or None."""
    return None if threshold is None else torch.sign(out.detach().float() - threshold).mean()

