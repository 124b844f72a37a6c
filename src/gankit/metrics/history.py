"""metrics.json: {"latest": result, "history": [result, ...]}, rewritten atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_history(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    try:
        return json.loads(Path(path).read_text()).get("history", [])
    except (json.JSONDecodeError, AttributeError):
        return []


def _write(path: Path, history: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"latest": history[-1] if history else None, "history": history}, indent=1))
    os.replace(tmp, path)


def append_history(path: Path, result: dict) -> None:
    _write(Path(path), read_history(path) + [result])


def prune_history(path: Path, step: int) -> None:
    """On resume: forget evaluations made during training after the checkpoint's step."""
    history = read_history(path)
    kept = [h for h in history if not (h.get("during_training") and h.get("step", 0) > step)]
    if len(kept) != len(history):
        _write(Path(path), kept)
