"""`gankit bench speed`: training throughput of presets, and the share of the machine's own peak.

Peak is measured in the same process with a large float32 matrix product; a training step's FLOPs are
counted once with torch.utils.flop_counter (forward and backward of both networks).
"""
from __future__ import annotations

import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import build_config
from .training.setup import build, epoch_permutation
from .training.steps import d_step, g_step, sample_z


def matmul_peak(device: torch.device, n: int = 2048, seconds: float = 2.0) -> float:
    """Measured float32 FLOP/s of an n x n matrix product."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def speed(preset: str, seconds: float = 20.0, batch_size: int | None = None, device: str = "auto") -> dict:
    over = {"train": {"device": device, "epochs": None, "minutes": None, "max_steps": 10**9}}
    if batch_size:
        over["train"]["batch_size"] = batch_size
    cfg = build_config(preset, overrides=[over])
    s = build(cfg)
    B, m = cfg.train.batch_size, cfg.model
    perm = epoch_permutation(0, 0, len(s.data)).to(s.device)
    n_batches = s.steps_per_epoch

    def one_step(i: int) -> None:
        real = s.data.batch(perm[(i % n_batches) * B:(i % n_batches + 1) * B])
        z = sample_z(B, m.latent_dim, m.latent_dist, s.device)
        extras = s.extras(i)
        d_step(s.G, s.D, s.opt_d, real, z, s.objective, cfg.loss.gp_lambda, cfg.loss.clip, extras)
        if (i + 1) % cfg.optim.n_critic == 0:
            g_step(s.G, s.D, s.opt_g, sample_z(B, m.latent_dim, m.latent_dist, s.device), s.objective, extras, real)

    try:
        with FlopCounterMode(display=False) as counter:  # FLOPs of n_critic steps, then per step
            for i in range(cfg.optim.n_critic):
                one_step(i)
        flops_per_step = counter.get_total_flops() / cfg.optim.n_critic
    except RuntimeError:  # the FLOP counter cannot follow double backward (gradient penalty)
        flops_per_step = None
    for i in range(3):  # warm-up
        one_step(i)
    _sync(s.device)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < cfg.optim.n_critic:
        one_step(steps)
        steps += 1
    _sync(s.device)
    dt = time.perf_counter() - t0
    peak = matmul_peak(s.device)
    achieved = flops_per_step * steps / dt if flops_per_step else None
    return {"preset": preset, "device": _device_name(s.device), "threads": torch.get_num_threads(),
            "batch_size": B, "steps": steps, "img_per_s": round(B * steps / dt, 1),
            "step_ms": round(1000 * dt / steps, 2),
            "gflop_per_step": round(flops_per_step / 1e9, 3) if flops_per_step else None,
            "achieved_gflops": round(achieved / 1e9, 1) if achieved else None, "peak_gflops": round(peak / 1e9, 1),
            "share_of_peak": round(achieved / peak, 3) if achieved else None}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()})"


def format_speed_table(rows: list[dict]) -> str:
    head = f"{'preset':<12} {'device':<24} {'batch':>5} {'img/s':>9} {'step ms':>9} {'GFLOP/s':>9} {'peak':>8} {'share':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        achieved = f"{r['achieved_gflops']:>9.1f}" if r["achieved_gflops"] else f"{'n/a':>9}"
        share = f"{r['share_of_peak']:>6.0%}" if r["share_of_peak"] else f"{'n/a':>6}"
        lines.append(f"{r['preset']:<12} {r['device'][:24]:<24} {r['batch_size']:>5} {r['img_per_s']:>9.1f} "
                     f"{r['step_ms']:>9.2f} {achieved} {r['peak_gflops']:>8.1f} {share}")
    return "\n".join(lines)
