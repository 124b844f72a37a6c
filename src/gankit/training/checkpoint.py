"""Atomic checkpoints and their safe loading.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
its final name, so a crash never leaves a half-written file under a checkpoint's name. Loading uses
`torch.load(weights_only=True)`: a checkpoint can hold tensors and plain data, never code.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import GankitError

STEP_RE = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def step_name(step: int) -> str:
    return f"step-{step:06d}.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file, fsync, then os.replace: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def list_step_checkpoints(run: Path) -> list[Path]:
    """Step checkpoints of a run, newest (highest step) first."""
    d = checkpoint_dir(run)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := STEP_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(run: Path, state: dict, step: int, keep: int) -> Path:
    """Write checkpoints/step-NNNNNN.pt and delete all but the newest `keep` step checkpoints."""
    path = checkpoint_dir(run) / step_name(step)
    atomic_save(state, path)
    for old in list_step_checkpoints(run)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_file(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load one checkpoint without running code. Raises ValueError if it is damaged."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, unsupported global...
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(obj, dict) or ("G" not in obj and "nets" not in obj):  # nets: pix2pix, cyclegan
        raise ValueError("not a gankit checkpoint (no generator weights)")
    return obj


def resolve_checkpoint(run: Path, name: Optional[str] = None) -> Path:
    """A named checkpoint ('step-000500', 'step-000500.pt', 'best', or a path) or, if None, the newest."""
    if name is None:
        found = list_step_checkpoints(run)
        if not found:
            raise GankitError(f"run '{run}' has no checkpoints; train it first (gankit train --out {run})")
        return found[0]
    candidates = [Path(name), checkpoint_dir(run) / name, checkpoint_dir(run) / f"{name}.pt"]
    for c in candidates:
        if c.is_file():
            return c
    avail = ", ".join(p.stem for p in list_step_checkpoints(run)) or "none"
    raise GankitError(f"checkpoint '{name}' not found in '{run}'; available: {avail}")


def load_latest(run: Path, map_location: str | torch.device = "cpu") -> tuple[Optional[dict], Optional[Path]]:
    """Newest loadable step checkpoint; damaged ones are reported and skipped (never deleted)."""
    for path in list_step_checkpoints(run):
        try:
            return load_file(path, map_location), path
        except ValueError as e:
            warnings.warn(f"checkpoint '{path.name}' is damaged ({e}); falling back to the previous one",
                          stacklevel=2)
    return None, None
