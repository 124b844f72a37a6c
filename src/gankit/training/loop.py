"""The training loop, top to bottom: resume, then per batch a D step (and a G step every n_critic),
log, checkpoint; per epoch a sample grid; at the end the plots. Ctrl-C saves a checkpoint first.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from .. import __version__
from ..config import Config, config_from_dict, load_yaml, merge, save_config
from ..data import toy_centers
from ..errors import GankitError
from ..metrics.history import append_history, prune_history, read_history
from ..observe.plots import (plot_d_outputs, plot_grad_norms, plot_losses, plot_metric, plot_progression,
                             save_samples)
from ..observe.report import write_report
from ..observe.tensorboard import TensorBoard
from ..observe.diagnostics import Diagnostics
from ..observe.progress import Progress
from .ema import ema_update_
from .techniques import gate_closed
from .checkpoint import atomic_save, checkpoint_dir, load_latest, save_checkpoint
from .dist import SINGLE, Dist, from_env, shutdown
from .setup import Setup, build, create_run_dir, default_run_dir, epoch_permutation, free_run_dir
from .stats import StatsWriter, read_log
from .steps import d_step, g_step


PLOT_EVERY_S = 30.0  # least seconds between rewrites of the curves during training (always at the end)


def due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


class StopFlag:
    """SIGINT/SIGTERM set a flag read at step boundaries, so the checkpoint saved is consistent.
    A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.raised = False
        self._old: dict = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def make_checkpoint(s: Setup, step: int, epoch: int, elapsed: float, best: Optional[float] = None,
                    rngs: Optional[list] = None) -> dict:
    """Everything needed to continue exactly: weights, optimizers, position in the data, RNG
    (under torchrun: every process's RNG, gathered by the caller into `rngs`)."""
    return {"format": 1, "gankit": __version__, "step": step, "epoch": epoch, "elapsed": elapsed,
            "rng_ranks": rngs, "z_gen": s.z_gen.get_state() if s.z_gen is not None else None,
            "amp": s.prec.state_dict(),
            "G": s.G.state_dict(), "D": s.D.state_dict(),
            "G_ema": s.G_ema.state_dict() if s.G_ema is not None else None, "opt_g": s.opt_g.state_dict(),
            "opt_d": s.opt_d.state_dict(), "rng": rng_state(s.device), "fixed_z": s.fixed_z.cpu(),
            "shape": list(s.data.shape), "config": s.cfg.to_dict(), "best": best, "num_classes": s.num_classes,
            "lr_scale": s.lr_scale, "g_skipped": s.g_skipped, "tech": s.technique_state()}


def save_if_finite(s: Setup, run: Path, step: int, epoch: int, elapsed: float, best: Optional[float]) -> bool:
    """Save a step checkpoint unless a weight is NaN or infinite: a diverged state never replaces a good one.
    Under torchrun every process calls it (the weights are the same everywhere); rank 0 writes."""
    nets = [s.G, s.D] + ([s.G_ema] if s.G_ema is not None else [])
    if not all(bool(torch.isfinite(p).all()) for net in nets for p in net.parameters()):
        return False
    rngs = s.dist.gather(rng_state(s.device)) if s.dist.active else None
    if s.dist.main:
        save_checkpoint(run, make_checkpoint(s, step, epoch, elapsed, best, rngs), step,
                        s.cfg.train.keep_checkpoints)
    return True


def restore(s: Setup, ckpt: dict) -> tuple[int, int, float]:
    s.G.load_state_dict(ckpt["G"])
    if s.G_ema is not None:
        s.G_ema.load_state_dict(ckpt.get("G_ema") or ckpt["G"])
    s.D.load_state_dict(ckpt["D"])
    s.opt_g.load_state_dict(ckpt["opt_g"])
    s.opt_d.load_state_dict(ckpt["opt_d"])
    s.lr_scale = ckpt.get("lr_scale", 1.0)
    s.g_skipped = ckpt.get("g_skipped", 0)
    s.load_technique_state(ckpt.get("tech", {}))
    for opt, lr in ((s.opt_g, s.cfg.optim.lr_g), (s.opt_d, s.cfg.optim.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr * s.lr_scale
    s.fixed_z = ckpt["fixed_z"].to(s.device)
    s.prec.load_state_dict(ckpt.get("amp"))
    if ckpt.get("z_gen") is not None and s.z_gen is not None:
        s.z_gen.set_state(ckpt["z_gen"])
    rngs = ckpt.get("rng_ranks")
    if rngs and len(rngs) == s.dist.world:  # each process continues its own stream
        set_rng_state(rngs[s.dist.rank], s.device)
    else:
        set_rng_state(ckpt["rng"], s.device)
        if s.dist.rank > 0:  # resumed with another number of processes: fresh distinct streams
            torch.manual_seed(s.cfg.train.seed + 1_000_003 * s.dist.rank + ckpt["step"])
    return ckpt["step"], ckpt["epoch"], ckpt["elapsed"]


@torch.no_grad()
def write_samples(s: Setup, path: Path, title: str) -> torch.Tensor:
    G = s.G_sample
    was_training = G.training
    G.eval()
    with torch.random.fork_rng(devices=[]):  # sampling-time dropout must not shift the training RNG
        x = s.cond.generate(G, s.fixed_z, s.fixed_y)
    G.train(was_training)
    centers = toy_centers(s.cfg.data.dataset) if s.cfg.is_toy else None
    save_samples(x, path, centers=centers, title=title, nrow=s.grid_cols or None,
                 labels=s.fixed_y if s.cond.mode in ("cgan", "acgan") and s.cfg.is_toy else None)
    return x


def write_plots(s: Setup, run: Path, final: bool = False) -> None:
    rows = read_log(run / "log.jsonl")
    if rows:
        plot_losses(rows, s.steps_per_epoch, run / "losses.png")
        plot_d_outputs(rows, s.steps_per_epoch, run / "d_outputs.png", s.objective.probabilities)
        plot_grad_norms(rows, s.steps_per_epoch, run / "grad_norms.png")
    grids = sorted((run / "samples").glob("epoch-*.png"))
    if final and (run / "samples" / "final.png").is_file():
        grids.append(run / "samples" / "final.png")
    plot_progression(grids, run / "progression.png")
    history = read_eval_history(run)
    if history:
        plot_metric(history, s.steps_per_epoch, run / "metrics.png")
    write_report(run, str(s.device))


def read_eval_history(run: Path) -> list[dict]:
    return [h for h in read_history(run / "metrics.json") if h.get("during_training")]


def evaluate_now(s: Setup, run: Path, evaluator, step: int, epoch: int, elapsed: float,
                 progress: Progress) -> tuple[dict, bool]:
    """Score G, append to metrics.json, and keep the best checkpoint as checkpoints/best.pt."""
    values = evaluator(s.G_sample)
    best = evaluator.is_best(values)
    append_history(run / "metrics.json", {"step": step, "epoch": epoch, "metrics": values, "best": best,
                                          "during_training": True, "num_fake": evaluator.num,
                                          "features": evaluator.extractor.info if evaluator.extractor else {}})
    if best:
        atomic_save(make_checkpoint(s, step, epoch, elapsed, evaluator.best), checkpoint_dir(run) / "best.pt")
    shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
    progress.message(f"eval at epoch {epoch}: {shown}{' (best so far)' if best else ''}")
    return values, best


def total_steps(s: Setup) -> Optional[int]:
    t = s.cfg.train
    limits = [t.max_steps] if t.max_steps else []
    if t.epochs:
        limits.append(t.epochs * s.steps_per_epoch)
    return min(limits) if limits else None


class _NoLog:
    """What processes other than rank 0 write: nothing."""

    def write(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


def run_loop(s: Setup, run: Path, ckpt: Optional[dict] = None, quiet: bool = False) -> dict:
    """Train until a stopping rule fires. Returns a summary (steps, epochs, seconds, stopped_by)."""
    t, cfg, d = s.cfg.train, s.cfg, s.dist
    main = d.main
    step, epoch, elapsed = restore(s, ckpt) if ckpt else (0, 0, 0.0)
    log = StatsWriter(run / "log.jsonl", resume_step=step if ckpt else 0) if main else _NoLog()
    spe, B, b = s.steps_per_epoch, t.batch_size, s.local_batch
    first = d.rank * b  # this process's share of each global batch: [first, first + b)
    budget_s = t.minutes * 60 if t.minutes else math.inf
    limit = total_steps(s)
    progress = Progress(limit, initial=step, enabled=not quiet and main, budget_s=budget_s, elapsed=elapsed)
    if ckpt:
        progress.message(f"resumed {run} at step {step} (epoch {epoch + 1})")
    if d.active:
        progress.message(f"{d.world} processes, {b} examples each per step (global batch {B})")
    g_stats: dict = {}
    stopped_by = None
    evaluator = None
    if t.eval_every and main:
        from ..metrics.evaluate import RunEvaluator
        evaluator = RunEvaluator(cfg, s.data.x, s.device)
        evaluator.best = ckpt.get("best") if ckpt else None
    if ckpt and main:
        prune_history(run / "metrics.json", step)

    def best() -> Optional[float]:
        return evaluator.best if evaluator is not None else None

    ref = s.data.x[torch.randperm(len(s.data), generator=torch.Generator().manual_seed(t.seed))[:t.num_samples]]
    diagnostics = Diagnostics(cfg, s.objective.probabilities, ref, run, progress.message)
    tb = TensorBoard(run) if t.tensorboard and main else None
    channels_last = t.channels_last and len(s.data.shape) == 3
    supervised_only = cfg.cond.mode == "ssgan" and cfg.cond.supervised_only
    classifier = None
    if cfg.cond.mode == "ssgan" and main:
        from ..metrics.classify import TestAccuracy
        try:
            classifier = TestAccuracy(cfg, s.device)
        except GankitError as e:  # train anyway; say why no accuracy will be logged
            print(f"gankit: warning: no test accuracy will be logged: {e}", file=sys.stderr)
    t_start, t_log, step_log = time.monotonic() - elapsed, time.monotonic(), step
    t_plots = time.monotonic()
    with StopFlag() as stop:
        while stopped_by is None:
            if t.epochs is not None and epoch >= t.epochs:
                stopped_by = "epochs"
                break
            perm = epoch_permutation(t.seed, epoch, len(s.data)).to(s.data.x.device)
            for i in range(step - epoch * spe, spe):
                idx = perm[i * B + first:i * B + first + b]
                real = s.data.batch(idx)  # [b, *shape]
                if channels_last:
                    real = real.contiguous(memory_format=torch.channels_last)
                extras = s.extras(step)  # techniques acting inside the steps (augment, noise, pack, ...)
                stats = d_step(s.G, s.D_train, s.opt_d, real, s.batch_z(), s.objective, cfg.loss.gp_lambda,
                               cfg.loss.clip, extras, s.real_y(idx), s.batch_y(), s.labelled_batch())
                step += 1
                if supervised_only:
                    pass  # the semi-supervised baseline trains D's classifier alone
                elif (due(step, cfg.optim.n_critic) and cfg.tech.g_gate is not None
                      and gate_closed(cfg.tech, d.mean(stats))):  # the gap averaged over the processes
                    s.g_skipped += 1  # the generator-update gate: D is far ahead, G waits
                elif due(step, cfg.optim.n_critic):
                    g_stats = g_step(s.G_train, s.D, s.opt_g, s.batch_z(), s.objective, extras, real, s.batch_y())
                    if s.G_ema is not None:
                        ema_update_(s.G_ema, s.G, t.ema_decay, step // cfg.optim.n_critic)
                elapsed = time.monotonic() - t_start
                sync_point = due(step, s.log_every)  # the only place values are read from the device
                if sync_point:
                    now = time.monotonic()
                    row = {"step": step, "epoch": epoch + 1, "time": round(elapsed, 3),
                           "img_per_s": round(B * (step - step_log) / max(now - t_log, 1e-9), 1)}
                    row.update({k: float(v) for k, v in d.mean({**stats, **g_stats}).items()})
                    if cfg.tech.g_gate is not None:
                        row["g_skipped"] = s.g_skipped  # G updates skipped by the gate so far
                    if not all(math.isfinite(v) for v in row.values()):  # strict JSON: null, not NaN
                        row = {k: v if math.isfinite(v) else None for k, v in row.items()}
                        row["nonfinite"] = True
                        stopped_by = "diverged"
                    log.write(row)
                    progress.update(step, epoch + 1, row)
                    if main:
                        diagnostics.on_row(row)
                    if tb is not None:
                        tb.scalars(row)
                    t_log, step_log = now, step
                if due(step, t.checkpoint_every) and not stopped_by and not save_if_finite(s, run, step, epoch,
                                                                                         elapsed, best()):
                    stopped_by = "diverged"
                if stopped_by:  # the same on every process: the logged values and weights are shared
                    break
                # reasons only one process may see: agreed on at the sync points
                local = ("strict" if cfg.diagnose.strict and diagnostics.count else "interrupt" if stop.raised
                         else "minutes" if elapsed >= budget_s else None)
                if d.active:
                    local = (local or "another process stopped") if sync_point and d.any(
                        local is not None, s.device) else None
                if t.max_steps is not None and step >= t.max_steps:
                    stopped_by = "max_steps"
                elif local:
                    stopped_by = local
                if stopped_by:
                    break
            else:  # the epoch ran to its end
                epoch += 1
                if main:
                    x = write_samples(s, run / "samples" / f"epoch-{epoch:04d}.png", f"epoch {epoch}, step {step}")
                    if tb is not None:
                        tb.image("samples/fixed_z", run / "samples" / f"epoch-{epoch:04d}.png", step)
                    diagnostics.on_samples(x, step, epoch)
                    if classifier is not None:  # the semi-supervised GAN's classifier on the test split
                        acc = classifier(s.D, s.cond)
                        append_history(run / "metrics.json", {"step": step, "epoch": epoch, "during_training": True,
                                                              "metrics": {"test_accuracy": acc}, "best": False})
                        progress.message(f"epoch {epoch}: test accuracy {acc:.4f} "
                                         f"({len(s.labelled)} labelled examples)")
                    if evaluator is not None and due(epoch, t.eval_every):
                        values, improved = evaluate_now(s, run, evaluator, step, epoch, elapsed, progress)
                        diagnostics.on_eval(values, improved, step, epoch)
                        if tb is not None:
                            tb.scalars({"step": step, **values}, prefix="eval")
                    if time.monotonic() - t_plots >= PLOT_EVERY_S:  # plots cost ~1 s: not after every tiny epoch
                        write_plots(s, run)
                        t_plots = time.monotonic()
                    progress.message(f"epoch {epoch} done: step {step}, {elapsed:.0f} s")
                if cfg.diagnose.strict and d.any(bool(diagnostics.count), s.device):
                    stopped_by = "strict"
    progress.close()
    if stopped_by != "diverged" and not save_if_finite(s, run, step, epoch, elapsed, best()):
        stopped_by = "diverged"
    log.close()
    if tb is not None:
        tb.close()
    if main:
        write_samples(s, run / "samples" / "final.png", f"final, step {step}")
        write_plots(s, run, final=True)
    return {"run": str(run), "steps": step, "epochs": epoch, "seconds": round(elapsed, 1),
            "stopped_by": stopped_by, "warnings": diagnostics.count}


def train(cfg: Config, out: Optional[str] = None, quiet: bool = False) -> dict:
    """Start a new run. Returns a summary dict with the run folder under 'run'.
    Under torchrun every process calls it; rank 0 names the folder and writes in it."""
    if cfg.is_translation:  # Pix2Pix and CycleGAN have their own loop (several networks, no z)
        from .translation import run_translation

        return run_translation(cfg, free_run_dir(cfg, out or cfg.train.out), quiet=quiet)
    d = from_env(cfg.train.device)
    try:
        run = free_run_dir(cfg, d.broadcast(str(out or cfg.train.out or default_run_dir(cfg))))
        s = build(cfg, d)  # data and models first: a bad dataset leaves no empty run folder behind
        if d.main:
            create_run_dir(cfg, run)
        d.barrier()
        return with_rollback(cfg, run, run_loop(s, run, quiet=quiet), quiet, d)
    finally:
        shutdown(d)


def with_rollback(cfg: Config, run: Path, summary: dict, quiet: bool, d: Dist = SINGLE) -> dict:
    """diagnose.on_divergence = rollback: reload the newest good checkpoint with halved learning rates."""
    for _ in range(cfg.diagnose.max_rollbacks if cfg.diagnose.on_divergence == "rollback" else 0):
        if summary["stopped_by"] != "diverged":
            break
        if d.active:
            print("gankit: warning: rollback after a divergence is not offered under torchrun; stopped",
                  file=sys.stderr)
            break
        s = build(cfg)  # fresh modules: the diverged ones hold NaNs
        ckpt, path = load_latest(run, map_location=s.device)
        if ckpt is None:
            break
        ckpt["lr_scale"] = ckpt.get("lr_scale", 1.0) * 0.5
        message = (f"divergence at step {summary['steps']}: rolled back to {path.name} with learning rates "
                   f"x{ckpt['lr_scale']:g} (lr_g={cfg.optim.lr_g * ckpt['lr_scale']:g}, "
                   f"lr_d={cfg.optim.lr_d * ckpt['lr_scale']:g})")
        with open(run / "diagnostics.jsonl", "a") as f:
            f.write(json.dumps({"step": summary["steps"], "kind": "rollback", "message": message}) + "\n")
        if not quiet:
            print(f"gankit: warning: {message}", file=sys.stderr)
        summary = run_loop(s, run, ckpt, quiet=quiet)
    return summary


BUDGET_KEYS = {"epochs", "minutes", "max_steps"}


def resume(run_dir: str | Path, train_overrides: Optional[dict] = None, quiet: bool = False) -> dict:
    """Continue a run from its newest loadable checkpoint (or start it over from its config.yaml).
    Only the budget (epochs, minutes, max_steps) may change on resume."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise GankitError(f"'{run}' is not a gankit run (no config.yaml); give the folder a run was saved in")
    cfg = config_from_dict(load_yaml(run / "config.yaml"))
    changes = {k: v for k, v in (train_overrides or {}).items() if getattr(cfg.train, k) != v}
    bad = sorted(set(changes) - BUDGET_KEYS)
    if bad:
        raise GankitError(f"cannot change {', '.join('train.' + k for k in bad)} when resuming; only "
                          f"--epochs, --minutes and max_steps can change (start a new run with --out)")
    if changes:
        merge(cfg, {"train": changes})
    if cfg.is_translation:
        from .translation import run_translation

        if changes:
            save_config(cfg, run / "config.yaml")
        return run_translation(cfg, run, resume=True, quiet=quiet)
    d = from_env(cfg.train.device)
    try:
        s = build(cfg, d)
        d.barrier()  # every process has read config.yaml before rank 0 rewrites it
        if changes and d.main:
            save_config(cfg, run / "config.yaml")
        ckpt, _ = load_latest(run, map_location=s.device)
        return with_rollback(cfg, run, run_loop(s, run, ckpt, quiet=quiet), quiet, d)
    finally:
        shutdown(d)
