"""The TensorBoard event file of a run."""
from pathlib import Path

import pytest

import gankit

from ..conftest import tiny_config


def test_tensorboard_event_file_has_scalars_and_images(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", train={"max_steps": None, "epochs": 2,
                                                                      "tensorboard": True, "sample_every_images": 256})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train/loss_d")) == 2 * 16  # 256 points / batch 16 = 16 steps per epoch
    assert len(acc.Images("samples/fixed_z")) == 2
