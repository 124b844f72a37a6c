"""A result of `gankit eval` kept in its run folder: appended to metrics.json, then the run's plots
(metrics.png, ...) and report.html redrawn from the folder so they show it."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from ..errors import GankitError
from .history import append_history


def steps_per_epoch(rows: Sequence[dict]) -> int:
    """A run's steps per epoch as its log shows them: the last step logged in epoch 1 (exact when every step
    is logged, as on a CPU; the epoch axis of the plots only needs it roughly)."""
    first = [r["step"] for r in rows if r.get("epoch") == 1 and isinstance(r.get("step"), int)]
    return max(first, default=1) or 1


def record_result(run: str | Path, result: dict, cfg, device: str) -> None:
    """Append `result` to RUN/metrics.json and redraw the plots and report. A folder that cannot be written
    is one error line; the caller has shown the result already."""
    from ..losses import OBJECTIVES
    from ..models.translation import TRANSLATORS
    from ..observe.plots import write_run_plots
    from ..run import read_log

    run = Path(run)
    path = run / "metrics.json"
    try:
        append_history(path, result)
    except OSError as e:
        raise GankitError(f"could not record the result in '{path}' ({e.strerror or e}); it was computed but not "
                          "saved: make the run folder writable, or evaluate with --no-record") from None
    probabilities = (TRANSLATORS.get(cfg.model.name).probabilities if cfg.is_translation  # D's outputs read as
                     else OBJECTIVES.get(cfg.loss.name).probabilities)  # probabilities (BCE losses)
    try:
        write_run_plots(run, steps_per_epoch(read_log(run / "log.jsonl")), probabilities, device)
    except OSError as e:
        warnings.warn(f"the result is in '{path}', but the plots and report.html of '{run}' could not be redrawn "
                      f"({e.strerror or e})", stacklevel=2)
