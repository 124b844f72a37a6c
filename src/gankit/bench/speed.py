"""`gankit bench speed`: training throughput of presets, and the share of the machine's own peak.

Peak is measured in the same process with a large float32 matrix product; a training step's FLOPs are
counted once with torch.utils.flop_counter (forward and backward of both networks).
"""
from __future__ import annotations

import functools
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import build_config, parse_override
from ..devices import is_gpu
from ..errors import GankitError

# speed options, each timed against the preset as shipped ("default")
VARIANTS: dict[str, dict] = {
    "default": {},
    "loop-optim": {"optim": {"impl": "loop"}},  # one kernel per parameter instead of foreach/fused
    "channels-last": {"train": {"channels_last": True}},
    "channels-first": {"train": {"channels_last": False}},
    "compile": {"train": {"compile": True}},
    "bf16": {"train": {"amp": "bf16"}},
    "fp16": {"train": {"amp": "fp16"}},
    "batch-128": {"train": {"batch_size": 128}},
}


def default_variants(device: str) -> list[str]:
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    return ["default", "loop-optim", "channels-last", "channels-first"] + (["bf16", "fp16"] if cuda else [])


@functools.cache  # once per device and dtype in a process
def matmul_peak(device: torch.device, n: int = 2048, seconds: float = 2.0, dtype: torch.dtype = torch.float32) -> float:
    """Measured FLOP/s of an n x n matrix product (in the dtype the training computes in)."""
    if is_gpu(device):
        n = 8192
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if is_gpu(device):
        torch.cuda.synchronize()


def speed(preset: str, seconds: float = 20.0, batch_size: int | None = None, device: str = "auto",
          variant: str = "default", peak: float | None = None, overrides: list[dict] | None = None) -> dict:
    """Time the training steps of a preset (with one speed option) for `seconds` after a warm-up."""
    from ..training import make_recipe
    from ..training.precision import DTYPES

    if variant not in VARIANTS:
        raise GankitError(f"unknown speed option '{variant}'; available: {', '.join(VARIANTS)}")
    over = {"train": {"device": device, "epochs": None, "minutes": None, "max_steps": 10**9}}
    if batch_size:
        over["train"]["batch_size"] = batch_size
    cfg = build_config(preset, overrides=[over, *(overrides or []), VARIANTS[variant]])
    recipe = make_recipe(cfg)
    B, spe = cfg.train.batch_size, recipe.steps_per_epoch

    def one_step(i: int, plain: bool = False) -> None:
        """The step training runs (recipe.batch, then recipe.step); plain: the uncompiled modules."""
        wrapped = recipe.G_train, recipe.D_train
        if plain:
            recipe.G_train, recipe.D_train = recipe.G, recipe.D
        recipe.step(recipe.batch(i // spe, i % spe), i)
        recipe.G_train, recipe.D_train = wrapped

    flops_per_step = _flops_per_step(one_step, cfg.optim.n_critic)
    warmup_s, steps, dt = _timed_steps(one_step, seconds, cfg.optim.n_critic, recipe.device)
    peak = peak or matmul_peak(recipe.device, dtype=DTYPES.get(cfg.train.amp, torch.float32))
    achieved = flops_per_step * steps / dt if flops_per_step else None
    return {"preset": preset, "variant": variant, "device": _device_name(recipe.device),
            "threads": torch.get_num_threads(), "warmup_s": round(warmup_s, 1),
            "batch_size": B, "steps": steps, "img_per_s": round(B * steps / dt, 1),
            "step_ms": round(1000 * dt / steps, 2),
            "gflop_per_step": round(flops_per_step / 1e9, 3) if flops_per_step else None,
            "achieved_gflops": round(achieved / 1e9, 1) if achieved else None, "peak_gflops": round(peak / 1e9, 1),
            "share_of_peak": round(achieved / peak, 3) if achieved else None}


def _flops_per_step(one_step, n_critic: int) -> float | None:
    """FLOPs of n_critic steps, then per step (None where the counter cannot follow the step)."""
    try:
        with FlopCounterMode(display=False) as counter:
            for i in range(n_critic):
                one_step(i, plain=True)  # the same arithmetic as the compiled modules
        return counter.get_total_flops() / n_critic
    except RuntimeError:  # the FLOP counter cannot follow double backward (gradient penalty)
        return None


def _timed_steps(one_step, seconds: float, n_critic: int, device: torch.device) -> tuple[float, int, float]:
    """Warm up, then run steps for `seconds` (at least n_critic): (warm-up s, steps, measured s)."""
    t_warm = time.perf_counter()
    i = 0
    # warm-up (and compilation): at least 10 steps and 3 s, so kernel caches and the allocator settle
    # and the first option timed in a process is not handicapped
    while i < 10 or time.perf_counter() - t_warm < 3.0:
        one_step(i)
        i += 1
    _sync(device)
    warmup_s = time.perf_counter() - t_warm
    _sync(device)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < n_critic:
        one_step(steps)
        steps += 1
    _sync(device)
    return warmup_s, steps, time.perf_counter() - t0


def _device_name(device: torch.device) -> str:
    if is_gpu(device):
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()})"


def format_speed_table(rows: list[dict]) -> str:
    head = (f"{'preset':<10} {'option':<14} {'device':<20} {'batch':>5} {'img/s':>9} {'step ms':>8} {'GFLOP/s':>8} "
            f"{'peak':>7} {'share':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        achieved = f"{r['achieved_gflops']:>8.1f}" if r["achieved_gflops"] else f"{'n/a':>8}"
        share = f"{r['share_of_peak']:>6.0%}" if r["share_of_peak"] else f"{'n/a':>6}"
        lines.append(f"{r['preset']:<10} {r['variant']:<14} {r['device'][:20]:<20} {r['batch_size']:>5} "
                     f"{r['img_per_s']:>9.1f} {r['step_ms']:>8.2f} {achieved} {r['peak_gflops']:>7.1f} {share}")
    return "\n".join(lines)


def from_args(args) -> list[dict]:
    """`gankit bench speed`: check the options, time each preset with each option, return the rows."""
    options = args.options.split(",") if args.options else default_variants(args.device)
    bad = [o for o in options if o not in VARIANTS]
    if bad:
        raise GankitError(f"unknown speed option '{bad[0]}'; available: {', '.join(VARIANTS)}")
    sets = [parse_override(x) for x in getattr(args, "set", [])]
    return [speed(p, seconds=args.seconds, batch_size=args.batch_size, device=args.device, variant=o, overrides=sets)
            for p in (args.preset or ["dcgan"]) for o in options]
