"""Artifacts that scale with time, not epochs: the grid schedule, its thinning, the report's size."""
from pathlib import Path

import pytest

import gankit
from gankit.observe.artifacts import MAX_GRIDS, REPORT_FRAME_BYTES, crossed, grid_spacing, pick_frames

from ..conftest import read_log, tiny_config


def kept_steps(steps: int, batch: int, every: int) -> list[int]:
    """The grids the watch keeps after `steps` steps, simulated as it writes and thins them."""
    kept, spacing = [], every
    for s in range(1, steps + 1):
        new = grid_spacing(s * batch, every)
        if new != spacing:
            kept, spacing = [k for k in kept if crossed(k, batch, new)], new
        if crossed(s, batch, spacing):
            kept.append(s)
    return kept


@pytest.mark.parametrize("steps, batch, every", [(50_000, 64, 10_000), (200_000, 16, 64), (3_000, 64, 32), (999, 7, 100)])
def test_at_most_max_grids_evenly_spread_whatever_the_length(steps, batch, every):
    kept = kept_steps(steps, batch, every)
    assert len(kept) <= MAX_GRIDS
    if steps * batch >= 2 * MAX_GRIDS * every:  # thinned at least once: between half and all of MAX_GRIDS
        assert len(kept) >= MAX_GRIDS // 2
    spacing = grid_spacing(steps * batch, every)
    assert kept == [s for s in range(1, steps + 1) if crossed(s, batch, spacing)]  # a pure function of the step


def test_a_long_run_on_a_tiny_dataset_keeps_few_grids_and_a_small_report(tmp_path, idx_dir):
    # 40 images, batch 8: 5 steps an epoch, 60 epochs; a grid every 16 images would be 150 grids without thinning
    cfg = tiny_config("gan-mlp", tmp_path / "run", data_dir=idx_dir, steps=300, data={"limit": 40, "holdout": 0.2},
                      train={"batch_size": 8, "sample_every_images": 16, "checkpoint_every": 1000})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    grids = sorted(p.name for p in (run / "samples").glob("step-*.png"))
    assert MAX_GRIDS // 2 <= len(grids) <= MAX_GRIDS
    assert grids == [f"step-{s:08d}.png" for s in kept_steps(300, 8, 16)]
    assert not list((run / "samples").glob("epoch-*.png"))
    page = (run / "report.html").read_text()
    assert page.count('"name": "step ') == len(grids)  # every kept grid is a frame of the slider
    assert len(page) < 4 / 3 * REPORT_FRAME_BYTES + 1_000_000  # the frames' budget in base64, and the curves
    assert len([r for r in read_log(run) if "d_acc_heldout" in r]) == 150  # measured every 16 images


def test_the_slider_keeps_to_its_byte_budget(tmp_path):
    paths = []
    for i in range(50):
        p = tmp_path / f"step-{i:08d}.png"
        p.write_bytes(b"x" * 1000)
        paths.append(p)
    picked = pick_frames(paths, budget=10_500)
    assert len(picked) == 10 and picked[-1] == paths[-1] and picked[0] == paths[0]
    assert picked == sorted(picked)  # in order, evenly spread
    assert pick_frames(paths, budget=10**9) == paths
    assert pick_frames(paths, budget=10) == [paths[-1]]
