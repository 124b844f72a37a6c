"""What the loop does around the steps, the same for every family: the log, progress, diagnostics,
trackers (TensorBoard, MLflow, W&B), evaluation during training, sample grids and D's overfitting measures (on
a schedule of images shown: observe/artifacts.py), plots, the report, checkpoints and stop reasons."""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import __version__
from ..devices import is_gpu
from ..errors import GankitError
from ..metrics.history import append_history, prune_history
from ..observe.artifacts import crossed, grid_path, grid_spacing, thin_grids
from ..observe.diagnostics import Diagnostics, overfit_summary
from ..observe.plots import write_run_plots
from ..observe.progress import Progress
from ..observe.trackers import Trackers, open_trackers
from ..run import NoLog, StatsWriter, atomic_save, checkpoint_dir, fingerprint, save_checkpoint
from ..schedules import value_at
from .recipe import Recipe, rng_state

DIVERGED = "diverged"  # the stop reason of a NaN or infinite loss or weight (exit code 3, rollback)
PLOT_EVERY_S = 30.0  # least seconds between rewrites of the curves during training (always at the end)


@dataclass
class Position:
    """Where a run is: steps and epochs done, seconds trained."""
    step: int = 0
    epoch: int = 0
    elapsed: float = 0.0

    @classmethod
    def restore(cls, recipe: Recipe, ckpt: Optional[dict]) -> "Position":
        if ckpt is None:
            return cls()
        recipe.load_state_dict(ckpt)
        return cls(ckpt["step"], ckpt["epoch"], ckpt["elapsed"])

    def progress(self, limit: Optional[int], budget_s: float) -> float:
        """The share of the budget used (steps or time, whichever is further)."""
        return max(self.step / limit if limit else 0.0, self.elapsed / budget_s if budget_s < math.inf else 0.0)


def make_checkpoint(recipe: Recipe, pos: Position, best: Optional[float] = None, rngs: Optional[list] = None) -> dict:
    """Everything needed to continue exactly: the recipe's state, the position, the best metric so far and
    (under torchrun) every process's RNG."""
    return {"format": 2, "gankit": __version__, "fingerprint": fingerprint(recipe.cfg), "step": pos.step,
            "epoch": pos.epoch, "elapsed": pos.elapsed,
            "best": best, "rng_ranks": rngs, **recipe.state_dict()}


def save_if_finite(recipe: Recipe, run: Path, pos: Position, best: Optional[float]) -> bool:
    """Save a step checkpoint unless a weight is NaN or infinite: a diverged state never replaces a good one.
    Under torchrun every process calls it (the weights are the same everywhere); rank 0 writes."""
    if not recipe.finite():
        return False
    d = recipe.dist
    rngs = d.gather(rng_state(recipe.device)) if d.active else None
    if d.main:
        if not run.is_dir():
            raise GankitError(f"the run folder '{run}' was deleted while training; nothing more can be saved")
        save_checkpoint(run, make_checkpoint(recipe, pos, best, rngs), pos.step, recipe.cfg.train.keep_checkpoints)
    return True


class Watch:
    """The loop's companions, created at its start and closed by finish()."""

    def __init__(self, recipe: Recipe, run: Path, pos: Position, ckpt: Optional[dict], quiet: bool):
        cfg, t, main = recipe.cfg, recipe.cfg.train, recipe.dist.main
        self.recipe, self.run, self.main = recipe, run, main
        self.log_every = t.log_every or (20 if is_gpu(recipe.device) else 1)
        self.budget_s = t.minutes * 60 if t.minutes else math.inf
        limits = [x for x in (t.max_steps, t.epochs * recipe.steps_per_epoch if t.epochs else None) if x]
        self.limit = min(limits) if limits else None
        self.writer = StatsWriter(run / "log.jsonl", resume_step=pos.step if ckpt else 0) if main else NoLog()
        self.progress = Progress(self.limit, initial=pos.step, enabled=not quiet and main, budget_s=self.budget_s,
                                 elapsed=pos.elapsed)
        if ckpt:
            self.progress.message(f"resumed {run} at step {pos.step} (epoch {pos.epoch + 1})")
        if recipe.dist.active:
            self.progress.message(f"{recipe.dist.world} processes, global batch {t.batch_size}")
        self.evaluator = recipe.evaluator() if t.eval_every and main else None
        if self.evaluator is not None:
            self.evaluator.best = ckpt.get("best") if ckpt else None
        if ckpt and main:
            prune_history(run / "metrics.json", pos.step)
        self.diagnostics = Diagnostics(cfg, recipe.probabilities, recipe.reference_samples(), run,
                                       self.progress.message)
        self.tracker = open_trackers(cfg, run) if main else Trackers([])
        self.t_log, self.step_log, self.t_plots = time.monotonic(), pos.step, time.monotonic()
        self.spacing = grid_spacing(pos.step * t.batch_size, t.sample_every_images)  # of the grids kept
        self.measured: dict[str, float] = {}  # D's overfitting measures, for the next log row

    @property
    def best(self) -> Optional[float]:
        return self.evaluator.best if self.evaluator is not None else None

    def log(self, stats: dict, pos: Position) -> bool:
        """Write one row of log.jsonl (values averaged over the processes). False if a value is not finite."""
        now = time.monotonic()
        row = {"step": pos.step, "epoch": pos.epoch + 1, "time": round(pos.elapsed, 3),
               "img_per_s": round(self.recipe.cfg.train.batch_size * (pos.step - self.step_log)
                                  / max(now - self.t_log, 1e-9), 1)}
        row.update({k: float(v) for k, v in self.recipe.dist.mean(stats).items()})
        row.update(self.measured)  # measured on the main process alone (after_step)
        self.measured = {}
        finite = all(math.isfinite(v) for v in row.values())
        if not finite:  # strict JSON: null, not NaN
            row = {k: v if math.isfinite(v) else None for k, v in row.items()}
            row["nonfinite"] = True
        self._check_run_dir()
        self.writer.write(row)
        self.progress.update(pos.step, pos.epoch + 1, row)
        if self.main:
            self.diagnostics.on_row(row)
        self.tracker.log_scalars(pos.step, row)
        self.t_log, self.step_log = now, pos.step
        return finite

    def _check_run_dir(self) -> None:
        if self.main and not (self.run / "config.yaml").is_file():
            raise GankitError(f"the run folder '{self.run}' (or its config.yaml) was deleted while training; "
                              "stopped (nothing more can be saved there)")

    def budget_spent(self, pos: Position) -> Optional[str]:
        """The budget (epochs, steps, minutes) already used up: a finished run resumed without raising it."""
        t = self.recipe.cfg.train
        spent = {"epochs": t.epochs is not None and pos.epoch >= t.epochs,
                 "max_steps": t.max_steps is not None and pos.step >= t.max_steps,
                 "minutes": pos.elapsed >= self.budget_s}
        return next((reason for reason, done in spent.items() if done), None)

    def stop_reason(self, pos: Position, interrupted: bool, sync: bool) -> Optional[str]:
        """Why to stop after this step, agreed on by every process at the sync points."""
        t, d = self.recipe.cfg.train, self.recipe.dist
        local = ("strict" if self.recipe.cfg.diagnose.strict and self.diagnostics.count else
                 "interrupt" if interrupted else "minutes" if pos.elapsed >= self.budget_s else None)
        if d.active:  # reasons only one process may see
            local = (local or "another process stopped") if sync and d.any(local is not None, self.recipe.device) else None
        if t.max_steps is not None and pos.step >= t.max_steps:
            return "max_steps"
        return local

    def after_step(self, pos: Position) -> bool:
        """Every train.sample_every_images images shown: D's overfitting measures (logged in this step's row)
        and the sample grid (older grids thinned), then (throttled) plots and the report. True when measured:
        the same on every process, so this step's row is logged everywhere."""
        t = self.recipe.cfg.train
        if not crossed(pos.step, t.batch_size, t.sample_every_images):
            return False
        if self.main:
            self._check_run_dir()
            self.measured = self.recipe.measure_overfitting()
            spacing = grid_spacing(pos.step * t.batch_size, t.sample_every_images)
            if spacing != self.spacing:
                thin_grids(self.run, t.batch_size, spacing)
                self.spacing = spacing
            if crossed(pos.step, t.batch_size, spacing):
                self._grid(pos)
                self.progress.message(f"step {pos.step} ({pos.step * t.batch_size:,} images, epoch {pos.epoch + 1}, "
                                      f"{pos.elapsed:.0f} s){overfit_summary(self.measured)}")
        return True

    def _grid(self, pos: Position) -> None:
        recipe, images = self.recipe, pos.step * self.recipe.cfg.train.batch_size
        grid = grid_path(self.run, pos.step)
        x = recipe.write_grid(grid, f"step {pos.step}, {images:,} images, epoch {pos.epoch + 1}")
        self.tracker.log_image(pos.step, "samples/fixed_z", grid)
        if x is not None:
            self.diagnostics.on_samples(x, pos.step, pos.epoch + 1)
        if time.monotonic() - self.t_plots >= PLOT_EVERY_S:  # plots and report cost ~1 s: not at every grid
            write_run_plots(self.run, recipe.steps_per_epoch, recipe.probabilities, str(recipe.device))
            self.t_plots = time.monotonic()

    def end_of_epoch(self, pos: Position) -> Optional[str]:
        """The family's per-epoch numbers and evaluation. Returns a stop reason."""
        recipe, t = self.recipe, self.recipe.cfg.train
        if self.main:
            self._check_run_dir()
            self._record(recipe.epoch_metrics(), pos, best=False)
            if self.evaluator is not None and pos.epoch % t.eval_every == 0:
                self.evaluate(pos)
        strict = recipe.cfg.diagnose.strict and recipe.dist.any(bool(self.diagnostics.count), recipe.device)
        asked = recipe.dist.any(self.tracker.stop_reason is not None, recipe.device)  # e.g. the tuner's pruner
        return "strict" if strict else (self.tracker.stop_reason or "tracker") if asked else None

    def _record(self, values: dict, pos: Position, best: bool, **extra) -> None:
        if values:
            append_history(self.run / "metrics.json", {"step": pos.step, "epoch": pos.epoch, "metrics": values,
                                                       "best": best, "during_training": True, **extra})
            self.tracker.log_metrics(pos.step, values)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            self.progress.message(f"epoch {pos.epoch}: {shown}{' (best so far)' if best else ''}")

    def evaluate(self, pos: Position) -> None:
        """Score the family's metric, append it to metrics.json, keep the best checkpoint as best.pt."""
        values = self.evaluator(self.recipe)
        best = self.evaluator.is_best(values)
        self._record(values, pos, best, num_fake=self.evaluator.num, features=self.evaluator.info)
        if best:
            atomic_save(make_checkpoint(self.recipe, pos, self.evaluator.best), checkpoint_dir(self.run) / "best.pt")
        self.diagnostics.on_eval(values, best, pos.step, pos.epoch)

    def finish(self, pos: Position, stopped_by: Optional[str]) -> dict:
        """The last checkpoint (unless diverged), the final grid, plots and report."""
        self.progress.close()
        if stopped_by != DIVERGED and not save_if_finite(self.recipe, self.run, pos, self.best):
            stopped_by = DIVERGED
        self.writer.close()
        self.tracker.finish(self.run, saved=stopped_by != DIVERGED)
        if self.main:
            self.recipe.write_grid(self.run / "samples" / "final.png", f"final, step {pos.step}")
            write_run_plots(self.run, self.recipe.steps_per_epoch, self.recipe.probabilities,
                            str(self.recipe.device), final=True)
        return {"run": str(self.run), "steps": pos.step, "epochs": pos.epoch, "seconds": round(pos.elapsed, 1),
                "stopped_by": stopped_by, "warnings": self.diagnostics.count, "lr_scale": self.recipe.lr_scale}

    @staticmethod
    def note_rollback(run: Path, step: int, name: str, lr_scale: float, cfg, quiet: bool) -> None:
        message = (f"divergence at step {step}: rolled back to {name} with learning rates x{lr_scale:g} "
                   f"(lr_g={value_at(cfg.optim.lr_g) * lr_scale:g}, lr_d={value_at(cfg.optim.lr_d) * lr_scale:g} at step 0)")
        with open(run / "diagnostics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "kind": "rollback", "message": message}) + "\n")
        if not quiet:
            print(f"gankit: warning: {message}", file=sys.stderr)

