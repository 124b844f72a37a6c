"""A progress bar on a terminal; periodic plain lines when the output is a file or a pipe."""
from __future__ import annotations

import sys
import time
from typing import Optional

from tqdm import tqdm


def _fmt(stats: dict) -> str:
    keys = ("loss_d", "loss_g", "d_real", "d_fake")
    return " ".join(f"{k}={stats[k]:.3f}" for k in keys if k in stats)


class Progress:
    def __init__(self, total: Optional[int], initial: int = 0, every_s: float = 10.0,
                 stream=None, enabled: bool = True, budget_s: float = float("inf"), elapsed: float = 0.0):
        """total: the step limit (None if unknown); budget_s: the wall-clock budget of the whole run."""
        self.stream = stream or sys.stderr
        self.every_s, self.enabled = every_s, enabled
        self.deadline = time.monotonic() + budget_s - elapsed
        # with a time budget the step total is only an upper bound: the ETA says which ends first
        self.total = total if budget_s == float("inf") else None
        self.step_limit = total
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = tqdm(total=total, initial=initial, file=self.stream, unit="step",
                        dynamic_ncols=True) if self.tty else None
        self.last_print = time.monotonic()
        self.t0, self.step0 = time.monotonic(), initial

    def update(self, step: int, epoch: int, stats: dict) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_description(f"epoch {epoch}", refresh=False)
            self.bar.set_postfix_str(_fmt(stats) + self._eta(step), refresh=False)
            self.bar.refresh()
        elif self.enabled and time.monotonic() - self.last_print >= self.every_s:
            self.line(step, epoch, stats)

    def line(self, step: int, epoch: int, stats: dict) -> None:
        self.last_print = time.monotonic()
        total = f"/{self.total}" if self.total else ""
        print(f"epoch {epoch} step {step}{total} {_fmt(stats)} {self._rate(step):.1f} step/s{self._eta(step)}",
              file=self.stream, flush=True)

    def _rate(self, step: int) -> float:
        return (step - self.step0) / max(time.monotonic() - self.t0, 1e-9)

    def _eta(self, step: int) -> str:
        """Time left: whichever comes first of the step limit and the wall-clock budget."""
        left = self.deadline - time.monotonic()
        rate = self._rate(step)
        if self.step_limit and rate > 0:
            left = min(left, (self.step_limit - step) / rate)
        if left == float("inf"):
            return ""
        return f" eta {time.strftime('%H:%M:%S', time.gmtime(max(left, 0)))}"

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif self.enabled:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
