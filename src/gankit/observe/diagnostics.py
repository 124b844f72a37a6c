"""Watch a run and say in plain words what is going wrong, and what to try.

Checks (thresholds in the `diagnose` config section):
- D overpowering: mean D(G(z)) pinned near 0 over a window of steps (BCE losses, where it is a probability);
- vanishing generator gradient: G's gradient norm below a floor over the window;
- oscillation without progress: the G loss cycles (large spread over the window) while the evaluation
  metric (--eval-every) has not improved for `plateau_evals` evaluations;
- mode collapse: the fixed-z samples' diversity (mean pairwise distance of 16x16 thumbnails) falls
  below a share of the real data's; for ring/grid, fixed-z samples capture too few modes;
- overfitting: D calls far more of its training images real than of the held-out ones (their gap above
  `overfit_gap`, measured by training/overfit.py): it memorises the training set.
(Divergence, a non-finite loss or weight, is handled by the loop: it stops without saving that state.)
Each warning is printed, appended to diagnostics.jsonl, and re-armed only after the condition clears.
"""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..metrics.toy import toy_modes
from ..schedules import value_at

OVERFITTING = "overfitting"  # the kind of the memorisation warning in diagnostics.jsonl


def overfit_summary(values: dict) -> str:
    """': D calls 97% of training images real, 41% of held-out ones' from D's overfitting measures."""
    if "d_acc_train" not in values:
        return ""
    held = f", {values['d_acc_heldout']:.0%} of held-out ones" if "d_acc_heldout" in values else ""
    return f": D calls {values['d_acc_train']:.0%} of training images real{held}"


def diversity(x: torch.Tensor) -> float:
    """Mean pairwise L2 distance of [N,C,H,W] images in [-1,1], on 16x16 thumbnails."""
    x = x.float()
    if x.shape[-1] > 16:
        x = F.adaptive_avg_pool2d(x, 16)
    flat = x.flatten(1)  # [N, C*16*16]
    d = torch.cdist(flat, flat)
    n = len(flat)
    return float(d.sum() / max(n * (n - 1), 1))


class Diagnostics:
    def __init__(self, cfg: Config, probabilities: bool, real: torch.Tensor, run: Path,
                 say: Callable[[str], None]):
        self.cfg, self.d = cfg, cfg.diagnose
        self.probabilities, self.run, self.say = probabilities, run, say
        self.d_fake = deque(maxlen=self.d.window)
        self.grad_g = deque(maxlen=self.d.window)
        self.loss_g = deque(maxlen=self.d.window)
        self.grad_d = deque(maxlen=self.d.window)
        self.evals_without_progress = 0
        self.active: set[str] = set()  # conditions warned about and not yet cleared
        self.count = 0
        self.real_diversity = diversity(real.float() / 127.5 - 1) if real.dim() == 4 else None

    def _warn(self, kind: str, step: int, epoch: int, message: str) -> None:
        if kind in self.active:
            return
        self.active.add(kind)
        self.count += 1
        self.say(f"gankit: warning: {message}")
        with open(self.run / "diagnostics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "epoch": epoch, "kind": kind, "message": message}) + "\n")

    def _clear(self, kind: str) -> None:
        self.active.discard(kind)

    def on_row(self, row: dict) -> None:
        """Called with every log row."""
        if not self.d.enabled:
            return
        step, epoch = row["step"], row["epoch"]
        if row.get("d_fake") is not None:
            self.d_fake.append(row["d_fake"])
        if row.get("grad_g") is not None:
            self.grad_g.append(row["grad_g"])
        if row.get("loss_g") is not None:
            self.loss_g.append(row["loss_g"])
        if row.get("grad_d") is not None:
            self.grad_d.append(row["grad_d"])
        self._saturation_check(row, step, epoch)
        self._overfit_check(row, step, epoch)
        if self.probabilities:
            self._floor_check("d_overpowering", self.d_fake, self.d.d_fake_floor, step, epoch, lambda m: (
                f"discriminator overpowering at step {step}: mean D(G(z)) = {m:.4f} over the last "
                f"{len(self.d_fake)} steps (threshold {self.d.d_fake_floor}); G gets almost no signal. Try a "
                "lower --lr-d or higher --lr-g, fewer D steps (--n-critic), or the nonsat/hinge loss"))
        self._floor_check("vanishing_gradient", self.grad_g, self.d.grad_g_floor, step, epoch, lambda m: (
            f"vanishing generator gradient at step {step}: mean ||grad G|| = {m:.2e} over the last "
            f"{len(self.grad_g)} steps (threshold {self.d.grad_g_floor:g}). Try the non-saturating loss "
            "(--loss nonsat) instead of minimax, or a weaker discriminator"))

    def _saturation_check(self, row: dict, step: int, epoch: int) -> None:
        """Learning rates far too high can saturate D without a NaN: its gradient vanishes to exactly 0 and
        G's loss explodes while the run looks 'done'."""
        loss_g = abs(row.get("loss_g") or 0.0)
        zero_d = len(self.grad_d) == self.grad_d.maxlen and max(self.grad_d) == 0.0
        if loss_g > self.d.loss_g_ceiling or zero_d:
            what = (f"G's loss is {loss_g:.3g}" if loss_g > self.d.loss_g_ceiling else
                    f"D's gradient has been exactly 0 for {len(self.grad_d)} steps")
            self._warn("saturated", step, epoch,
                       f"the discriminator is saturated at step {step}: {what}; the learning rates are far too high "
                       f"(lr_g={value_at(self.cfg.optim.lr_g, step):g}, "
                       f"lr_d={value_at(self.cfg.optim.lr_d, step):g}). Lower --lr-g/--lr-d (e.g. 2e-4)")

    def _overfit_check(self, row: dict, step: int, epoch: int) -> None:
        """D calls many more training images real than held-out ones: it memorises its training set."""
        train, held = row.get("d_acc_train"), row.get("d_acc_heldout")
        if train is None or held is None:
            return
        if train - held > self.d.overfit_gap:
            target = getattr(self.cfg.tech, "ada_target", None)
            fix = (f"lower tech.ada_target (now {target:g}) or add data" if target is not None else
                   "try --set tech.ada_target=0.6 or more data")
            self._warn(OVERFITTING, step, epoch,
                       f"D calls {train:.0%} of training images real but {held:.0%} of held-out ones at step {step}: "
                       f"the discriminator is overfitting; {fix}")
        elif train - held < self.d.overfit_gap / 2:
            self._clear(OVERFITTING)

    def _floor_check(self, kind: str, window: deque, floor: float, step: int, epoch: int,
                     message: Callable[[float], str]) -> None:
        """Warn when a full window's mean falls below floor; re-arm once it is back above twice the floor."""
        if len(window) < window.maxlen:
            return
        mean = sum(window) / len(window)
        if mean < floor:
            self._warn(kind, step, epoch, message(mean))
        elif mean > 2 * floor:
            self._clear(kind)

    def on_eval(self, values: dict, improved: bool, step: int, epoch: int) -> None:
        """Called after each evaluation during training."""
        if not self.d.enabled:
            return
        self.evals_without_progress = 0 if improved else self.evals_without_progress + 1
        if self.evals_without_progress < self.d.plateau_evals or len(self.loss_g) < 2:
            self._clear("oscillation")
            return
        mean = sum(self.loss_g) / len(self.loss_g)
        std = (sum((v - mean) ** 2 for v in self.loss_g) / len(self.loss_g)) ** 0.5
        cv = std / max(abs(mean), 1e-12)
        if cv > self.d.oscillation_cv:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            self._warn("oscillation", step, epoch,
                       f"oscillation without progress at epoch {epoch}: the G loss swings (std/mean = {cv:.2f}, "
                       f"threshold {self.d.oscillation_cv}) and the metric has not improved for "
                       f"{self.evals_without_progress} evaluations ({shown}). Try lower learning rates, TTUR "
                       "(--lr-d above --lr-g), or an EMA of G (--set train.ema_decay=0.999)")

    def on_samples(self, samples: torch.Tensor, step: int, epoch: int) -> Optional[float]:
        """Called with the fixed-z samples at each epoch's end. Returns the diversity measure."""
        if not self.d.enabled or step < self.d.collapse_warmup:  # early samples are noise, not a collapse
            return None
        if samples.dim() == 2:  # 2-D points: the share of modes captured
            m = toy_modes(samples.cpu(), self.cfg.data.dataset)
            value, floor = m["modes"] / m["total_modes"], self.d.collapse_modes
            seen = f"the fixed-z samples capture {m['modes']} of {m['total_modes']} modes (threshold {floor:.0%})"
        else:  # images: diversity relative to real data
            value = diversity(samples.cpu()) / max(self.real_diversity or 1e-12, 1e-12)
            floor = self.d.collapse_ratio
            seen = f"the fixed-z samples are {value:.2f}x as diverse as real data (threshold {floor})"
        if value < floor:
            self._warn("mode_collapse", step, epoch,
                       f"mode collapse at epoch {epoch}: {seen}. Try a lower learning rate, label smoothing, or a "
                       "technique against collapse (minibatch discrimination, PacGAN)")
        else:
            self._clear("mode_collapse")
        return value
