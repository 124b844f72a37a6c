"""`gankit train --resume RUN`: every option given goes to gankit.training.loop.resume, which alone decides
what may change (the budget and machine options)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import gankit
from gankit.cli import main
from gankit.run import list_step_checkpoints, load_file

from ..conftest import tiny_config


@pytest.fixture
def run(tmp_path, idx_dir) -> Path:
    """A finished 4-step run (checkpoints at steps 2 and 4)."""
    return Path(gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir), quiet=True)["run"])


def saved(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.mark.parametrize("flags, key", [
    (["--seed", "5"], "train.seed"),
    (["--lr-g", "0.1"], "optim.lr_g"),
    (["--batch-size", "8"], "train.batch_size"),
    (["--loss", "hinge"], "loss.name"),
    (["--strict"], "diagnose.strict"),
    (["--set", "model.g_width=16"], "model.g_width"),
])
def test_resume_refuses_other_changes_in_one_line(run, flags, key, capsys):
    before, config = list_step_checkpoints(run), saved(run)
    assert main(["train", "--resume", str(run), "--max-steps", "6", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gankit: error: cannot change {key} when resuming;"), err
    assert list_step_checkpoints(run) == before and saved(run) == config  # nothing trained, nothing rewritten


def test_resume_refuses_preset_and_config(run, capsys):
    assert main(["train", "--resume", str(run), "--preset", "wgan"]) == 2
    assert "cannot be combined with --resume" in capsys.readouterr().err


def test_minutes_on_resume_means_more_minutes(run):
    elapsed = load_file(list_step_checkpoints(run)[0])["elapsed"]
    assert main(["train", "--resume", str(run), "--minutes", "5", "--max-steps", "6", "--quiet"]) == 0
    train = saved(run)["train"]
    assert train["minutes"] == pytest.approx(elapsed / 60 + 5, abs=1e-6) and train["max_steps"] == 6
    assert train["epochs"] is None  # one budget given replaces the other


def test_machine_options_and_unchanged_values_are_accepted_on_resume(run, capsys):
    assert main(["train", "--resume", str(run), "--threads", "1", "--device", "cpu", "--seed", "0",
                 "--max-steps", "6", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "done: 6 steps" in out and f"run folder: {run}" in out
    assert saved(run)["train"]["threads"] == 1


def test_epochs_on_resume_is_the_runs_total(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs", "2", "--max-steps", "100", "--quiet"]) == 0  # 4 steps an epoch
    assert "done: 8 steps, 2 epochs" in capsys.readouterr().out
