"""The run's machine-readable log: one JSON object per logged step in log.jsonl."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator


def read_log(path: Path) -> list[dict]:
    """All complete rows of a log.jsonl (a torn last line from a crash is ignored)."""
    rows = []
    if not Path(path).is_file():
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


class StatsWriter:
    """Appends rows to log.jsonl. On resume, rows past the checkpoint's step are dropped first,
    so the log reads as if the run had never stopped."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is not None:
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.path)
        self._f = open(self.path, "a", buffering=1)

    def write(self, row: dict) -> None:
        self._f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[dict]:
        return iter(read_log(self.path))
