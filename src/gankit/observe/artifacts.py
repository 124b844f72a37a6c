"""Artifacts that scale with the time trained, not with the number of epochs.

The sample grid is written every `every` images shown (train.sample_every_images), named by its step
(samples/step-00001234.png). Once more than MAX_GRIDS would exist, the spacing doubles and the grids off the
new spacing are deleted: between MAX_GRIDS / 2 and MAX_GRIDS grids remain, evenly spread over the run, for
a 40-image dataset trained for hours as for a large one trained for an epoch. Everything here is a pure
function of the step and the batch size, so a resumed run writes and keeps exactly the grids an
uninterrupted one does.

The report embeds at most REPORT_FRAME_BYTES of those grids behind its slider (evenly chosen, the newest
always in): a run's report stays a few megabytes whatever its length and image size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

MAX_GRIDS = 100  # at most this many step grids stay in samples/ (plus final.png)
REPORT_FRAME_BYTES = 6 << 20  # the slider's frames, before base64
GRID_PREFIX = "step-"


def crossed(step: int, batch: int, every: int) -> bool:
    """Step `step` (counted from 1) took the number of images shown past a multiple of `every`."""
    return (step * batch) // every > ((step - 1) * batch) // every


def grid_spacing(images: int, every: int, max_grids: int = MAX_GRIDS) -> int:
    """The spacing of the grids kept once `images` were shown: every * 2^k, the least with at most
    max_grids grids."""
    spacing = every
    while images // spacing > max_grids:
        spacing *= 2
    return spacing


def grid_path(run: Path, step: int) -> Path:
    return run / "samples" / f"{GRID_PREFIX}{step:08d}.png"


def step_of(path: Path) -> int | None:
    """The step a grid was written at (None for final.png and the epoch grids of older runs)."""
    number = path.stem[len(GRID_PREFIX):] if path.stem.startswith(GRID_PREFIX) else ""
    return int(number) if number.isdigit() else None


def run_grids(run: Path) -> list[Path]:
    """A run's grids in the order written: the epoch grids of runs from older versions, then step grids."""
    samples = Path(run) / "samples"
    return sorted(samples.glob("epoch-*.png")) + sorted(samples.glob(f"{GRID_PREFIX}*.png"), key=lambda p: step_of(p) or 0)


def thin_grids(run: Path, batch: int, spacing: int) -> int:
    """Delete the step grids that are off the spacing (their step did not cross a multiple of it).
    Returns how many were deleted."""
    gone = 0
    for p in run_grids(run):
        step = step_of(p)
        if step is not None and not crossed(step, batch, spacing):
            p.unlink(missing_ok=True)
            gone += 1
    return gone


def pick_frames(paths: Sequence[Path], budget: int = REPORT_FRAME_BYTES) -> list[Path]:
    """Evenly spaced frames whose files fit in `budget` bytes; the last always among them."""
    paths = [p for p in paths if p.is_file()]
    if not paths:
        return []
    sizes = {p: p.stat().st_size for p in paths}
    n = len(paths)
    while n > 1:
        picked = [paths[round(i * (len(paths) - 1) / (n - 1))] for i in range(n)]
        if sum(sizes[p] for p in dict.fromkeys(picked)) <= budget:
            return list(dict.fromkeys(picked))
        n -= max(1, n // 8)
    return [paths[-1]]
