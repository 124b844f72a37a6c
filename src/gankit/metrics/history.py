"""metrics.json: {"latest": result, "history": [result, ...]}, rewritten atomically.

A result is an object with an object "metrics". A file of another shape (a damaged or hand-edited one: not
JSON, a list, "history" not a list, rows that are not results) is read for the results it holds, with one
warning line; before such a file is rewritten, it is kept beside as metrics.json.damaged.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional

MAX_BYTES = 64 << 20  # a larger metrics.json is not read (thousands of evaluations take a few MiB)


def _is_result(row) -> bool:
    return isinstance(row, dict) and isinstance(row.get("metrics"), dict)


def _read(path: Path) -> tuple[list[dict], Optional[str]]:
    """(the results the file holds, what is wrong with it or None)."""
    if path.stat().st_size > MAX_BYTES:
        return [], f"is over {MAX_BYTES >> 20} MiB; not read"
    try:
        data = json.loads(path.read_text(errors="replace"))
    except (json.JSONDecodeError, RecursionError) as e:
        return [], f"is not JSON ({str(e)[:60]})"
    if isinstance(data, list):
        rows, shape = data, "is a bare list, not {\"history\": [...]}; read as the history"
    elif isinstance(data, dict) and isinstance(data.get("history"), list):
        rows, shape = data["history"], None
    else:
        return [], f"holds a {type(data).__name__} without a \"history\" list; no results read from it"
    kept = [r for r in rows if _is_result(r)]
    skipped = len(rows) - len(kept)
    if skipped:
        entries = f"{skipped} entr{'y' if skipped == 1 else 'ies'}"
        return kept, f"has {entries} that are not results (objects with \"metrics\"); skipped"
    return kept, shape


def read_history(path: Path) -> list[dict]:
    """The results of a metrics.json (none when it is missing); a file of the wrong shape gives what it can,
    and one warning line."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows, problem = _read(path)
    except OSError as e:
        rows, problem = [], f"cannot be read ({e.strerror or e})"
    if problem:
        warnings.warn(f"'{path}' {problem}", stacklevel=1)  # one place: shown once per process
    return rows


def _write(path: Path, history: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"latest": history[-1] if history else None, "history": history}, indent=1))
    os.replace(tmp, path)


def _keep_damaged(path: Path) -> None:
    """A metrics.json of the wrong shape is copied to metrics.json.damaged before it is rewritten."""
    if path.is_file():
        try:
            problem = _read(path)[1]
        except OSError:
            return
        if problem:
            path.with_name(path.name + ".damaged").write_bytes(path.read_bytes())


def append_history(path: Path, result: dict) -> None:
    path = Path(path)
    history = read_history(path)
    _keep_damaged(path)
    _write(path, history + [result])


def prune_history(path: Path, step: int) -> None:
    """On resume: forget evaluations made during training after the checkpoint's step."""
    history = read_history(path)
    kept = [h for h in history if not (h.get("during_training") and h.get("step", 0) > step)]
    if len(kept) != len(history):
        _keep_damaged(Path(path))
        _write(Path(path), kept)
