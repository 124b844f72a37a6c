"""The one training loop, for every GAN family: batch -> step -> (when due) log, checkpoint, epoch work ->
stop reason. What differs between families lives in their recipe (training/recipe.py); what the loop
does around the steps lives in training/watch.py.
"""
from __future__ import annotations

import contextlib
import copy
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from ..config import Config, merge, save_config, validate
from ..errors import GankitError
from ..run import (
    RunLock,
    atomic_save,
    checkpoint_dir,
    create_run_dir,
    default_run_dir,
    free_run_dir,
    list_step_checkpoints,
    load_latest,
    read_config,
    run_fingerprints,
)
from .dist import SINGLE, Dist, from_env, shutdown
from .recipe import Recipe
from .watch import DIVERGED, Position, Watch, make_checkpoint, save_if_finite


def due(step: int, every: Optional[int]) -> bool:
    return bool(every) and step % every == 0


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


# train.clock: what train.minutes and snapshot_minutes count. "cpu" is this process's CPU time, so that runs
# compared on a shared machine get the same compute whatever else runs (one thread: a minute of one core)
CLOCKS = {"wall": time.monotonic, "cpu": time.process_time}


class Snapshots:
    """checkpoints/minute-M.pt for each M of train.snapshot_minutes, saved at the first step boundary after
    M minutes of training (a resumed run keeps counting from its elapsed time)."""

    def __init__(self, minutes, elapsed: float):
        self.pending = sorted(m for m in minutes if m * 60 > elapsed)

    def save_due(self, recipe: Recipe, run: Path, pos: Position, best) -> None:
        if self.pending and pos.elapsed >= self.pending[0] * 60:
            m = self.pending.pop(0)
            atomic_save(make_checkpoint(recipe, pos, best), checkpoint_dir(run) / f"minute-{m:g}.pt")


def run_loop(recipe: Recipe, run: Path, ckpt: Optional[dict] = None, quiet: bool = False) -> dict:
    """Train until a stopping rule fires. Returns a summary (steps, epochs, seconds, stopped_by)."""
    t = recipe.cfg.train
    pos = Position.restore(recipe, ckpt)
    with StopFlag() as stop:  # from the first file written (log.jsonl): a Ctrl-C in Watch's set-up still saves a step
        watch = Watch(recipe, run, pos, ckpt, quiet)
        clock = CLOCKS[t.clock]
        t0, stopped_by = clock() - pos.elapsed, None
        snapshots = Snapshots(t.snapshot_minutes, pos.elapsed)
        while stopped_by is None:
            stopped_by = watch.budget_spent(pos)  # at the start of every epoch, and of a resumed run
            if stopped_by:
                break
            for i in range(pos.step - pos.epoch * recipe.steps_per_epoch, recipe.steps_per_epoch):
                scheduled = recipe.apply_schedules(pos)  # learning rates, beta2, penalty weights at this step
                stats = {**recipe.step(recipe.batch(pos.epoch, i), pos.step), **scheduled}
                pos.step, pos.elapsed = pos.step + 1, clock() - t0
                snapshots.save_due(recipe, run, pos, watch.best)
                measured = watch.after_step(pos)  # grids and D's overfitting measures, every N images shown
                sync = measured or due(pos.step, watch.log_every)  # the only place values are read from the device
                if sync and not watch.log(stats, pos):
                    stopped_by = DIVERGED  # a logged value is NaN or infinite
                elif due(pos.step, t.checkpoint_every) and not save_if_finite(recipe, run, pos, watch.best):
                    stopped_by = DIVERGED  # a weight is NaN or infinite: the last good checkpoint stays
                else:
                    stopped_by = watch.stop_reason(pos, stop.raised, sync)
                if stopped_by:
                    break
            else:  # the epoch ran to its end
                pos.epoch += 1
                stopped_by = watch.end_of_epoch(pos)
    return watch.finish(pos, stopped_by)


def train(cfg: Config, out: Optional[str] = None, quiet: bool = False) -> dict:
    """Start a new run. Returns a summary dict with the run folder under 'run'.
    Under torchrun every process calls it; rank 0 names the folder and writes in it."""
    procs = from_env(cfg.train.device)
    try:
        run = free_run_dir(cfg, procs.broadcast(str(out or cfg.train.out or default_run_dir(cfg))))
        recipe = make_recipe(cfg, procs)  # data and models first: a bad dataset leaves no empty run folder behind
        existed, made, discarded = run.is_dir(), outermost_missing(run), False
        try:
            with RunLock(run) if procs.main else contextlib.nullcontext():
                started = False
                try:
                    if procs.main:
                        create_run_dir(cfg, run)
                        started = True
                        if not quiet:
                            print(f"run folder: {run}", file=sys.stderr)
                    procs.barrier()
                    summary = with_rollback(cfg, run, run_loop(recipe, run, quiet=quiet), quiet, procs)
                except GankitError:  # before the first step (a tracker unreachable): leave no half-made run;
                    discarded = started and remove_start_files(run)  # its files while the lock is held,
                    raise
        except GankitError:
            if discarded:  # its folders once the lock is let go (rmdir: only what nobody has written to since)
                remove_made_folders(run, existed, made)
            raise
        del recipe  # DDP holds the process group: let it go before the group does
        return summary
    finally:
        shutdown(procs)


def outermost_missing(path: Path) -> Optional[Path]:
    """The outermost folder of a resolved path that does not exist yet: what creating it will make (None if it
    exists)."""
    made = None
    for p in [path, *path.parents]:
        if p.exists() or p.is_symlink():
            break
        made = p
    return made


# what a run writes before its first step (and the plots and report written when it stops): all a failed start
# may remove; anything else in the folder (another process's files, a run in a subfolder) stays. RUN/.lock goes
# when the lock is let go.
START_FILES = ("config.yaml", "log.jsonl", "diagnostics.jsonl", "trackers.json", "report.html",
               ".report.html.tmp", "losses.png", "d_outputs.png", "grad_norms.png", "schedules.png",
               "overfitting.png", "progression.png", "metrics.png")
START_FOLDERS = ("checkpoints", "samples")  # removed only if empty
TRACKER_FOLDERS = ("tensorboard", "mlflow", "wandb")  # the trackers' own files for this run


def remove_start_files(run: Path) -> bool:
    """A new run that failed before its first step (a tracker that cannot be reached, say) leaves nothing
    behind, so the same command works once the cause is fixed: first the files and empty folders it wrote go
    (this), then its folder and the empty parents made for it (remove_made_folders). False (nothing removed) if
    it has a checkpoint, a logged step or a score: such a run is never touched."""
    log, ckpts = run / "log.jsonl", run / "checkpoints"
    trained = ((log.is_file() and log.stat().st_size > 0) or (run / "metrics.json").exists()
               or (ckpts.is_dir() and any(ckpts.iterdir())))  # a step, a score, a best.pt or a snapshot
    if trained or not run.is_dir():
        return False
    for name in START_FILES:
        if not (run / name).is_dir():
            (run / name).unlink(missing_ok=True)
    for name in TRACKER_FOLDERS:
        if (run / name).is_dir() and not (run / name).is_symlink():
            shutil.rmtree(run / name, ignore_errors=True)
    for name in START_FOLDERS:
        with contextlib.suppress(OSError):
            (run / name).rmdir()  # only if empty
    return True


def remove_made_folders(run: Path, existed: bool, made: Optional[Path]) -> None:
    """The run folder and the parents made for it (`made`, the outermost), each only if empty."""
    for p in [run, *run.parents] if not existed else []:
        if made is None or not p.is_relative_to(made):
            break  # a parent that was there before
        try:
            p.rmdir()
        except OSError:
            break


def make_recipe(cfg: Config, d: Dist = SINGLE) -> Recipe:
    """The recipe of the config's family: image-to-image translation or a GAN from z."""
    if cfg.is_translation:
        from .translation import translation_recipe

        return translation_recipe(cfg, d)
    from .gan import GanRecipe

    return GanRecipe(cfg, d)


def with_rollback(cfg: Config, run: Path, summary: dict, quiet: bool, procs: Dist = SINGLE) -> dict:
    """diagnose.on_divergence = rollback: reload the newest good checkpoint with the learning rates halved
    again at each rollback (x0.5, x0.25, ...)."""
    for _ in range(cfg.diagnose.max_rollbacks if cfg.diagnose.on_divergence == "rollback" else 0):
        if summary["stopped_by"] != DIVERGED:
            break
        if procs.active:
            print("gankit: warning: rollback after a divergence is not offered under torchrun; stopped",
                  file=sys.stderr)
            break
        recipe = make_recipe(cfg)  # fresh modules: the diverged ones hold NaNs
        ckpt, path = load_latest(run, map_location=recipe.device)
        if ckpt is None:
            break
        ckpt["lr_scale"] = summary["lr_scale"] * 0.5  # compounding: half of what diverged
        Watch.note_rollback(run, summary["steps"], path.name, ckpt["lr_scale"], cfg, quiet)
        summary = run_loop(recipe, run, ckpt, quiet=quiet)
    return summary


BUDGET_KEYS = {"epochs", "minutes", "max_steps", "clock"}
# how, not what, is trained
MACHINE_KEYS = {"threads", "device", "log_every", "tensorboard", "snapshot_minutes", "tracker", "tracker_uri"}


def resume(run_dir: str | Path, train_overrides: Optional[dict] = None, quiet: bool = False) -> dict:
    """Continue a run from its newest loadable checkpoint (or start it over from its config.yaml).
    --epochs and --max-steps are the run's totals; --minutes is more minutes from now. Only the budget and
    machine options (threads, device, log_every, tensorboard) may change."""
    run = Path(run_dir)
    cfg = read_config(run)
    procs = from_env(cfg.train.device)
    try:
        with RunLock(run) if procs.main else contextlib.nullcontext():
            accepted = run_fingerprints(run, cfg)  # before config.yaml may be rewritten with a new budget
            ckpt, _ = load_latest(run, map_location="cpu", expected=accepted)
            if ckpt is None and list_step_checkpoints(run):
                raise GankitError(f"no checkpoint in '{run}' matches its config.yaml (edited, or files from another "
                                  "run); restore config.yaml or start a new run with --out")
            changes = _resume_changes(cfg, train_overrides or {}, ckpt)
            if changes:
                merge(cfg, {"train": changes})
            recipe = make_recipe(cfg, procs)
            procs.barrier()  # every process has read config.yaml before rank 0 rewrites it
            before = (run / "config.yaml").read_text() if changes and procs.main else None
            if before is not None:
                save_config(cfg, run / "config.yaml")
            ckpt, path = load_latest(run, map_location=recipe.device, expected=accepted)
            try:
                summary = with_rollback(cfg, run, run_loop(recipe, run, ckpt, quiet=quiet), quiet, procs)
            except GankitError:  # before a new checkpoint (a tracker unreachable): the run keeps its old options
                if before is not None and (list_step_checkpoints(run)[:1] or [None])[0] == path:
                    (run / "config.yaml").write_text(before)
                raise
        del recipe  # DDP holds the process group: let it go before the group does
        return summary
    finally:
        shutdown(procs)


def _resume_changes(cfg: Config, overrides: dict, ckpt: Optional[dict]) -> dict:
    """The train keys that change on resume, after checking every override: train keys ({'max_steps': 8}) or
    config sections as for build_config ({'optim': {'lr_g': 0.1}}). Only BUDGET_KEYS and MACHINE_KEYS may
    differ from the run's config; --minutes M becomes the time trained so far + M."""
    given = {k: v for k, v in overrides.items() if isinstance(v, dict)}
    given["train"] = {**given.get("train", {}), **{k: v for k, v in overrides.items() if not isinstance(v, dict)}}
    new, old = merge(copy.deepcopy(cfg), given).to_dict(), cfg.to_dict()
    changed = {f"{s}.{k}": v for s, sub in new.items() if isinstance(sub, dict) for k, v in sub.items() if old[s][k] != v}
    allowed = {f"train.{k}" for k in BUDGET_KEYS | MACHINE_KEYS}
    bad = sorted(set(changed) - allowed)
    if bad:
        raise GankitError(f"cannot change {', '.join(bad)} when resuming; only the budget "
                          f"(--epochs, --minutes, --max-steps) and machine options (--threads, --device) can change "
                          f"(start a new run with --out)")
    changes = {key.partition(".")[2]: v for key, v in changed.items()}
    if given["train"].get("minutes") is not None:
        done = ckpt["elapsed"] if ckpt else 0.0
        changes["minutes"] = round(done / 60 + new["train"]["minutes"], 6)
    validate(merge(copy.deepcopy(cfg), {"train": changes}))
    return changes
