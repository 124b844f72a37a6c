import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gankit.cli import main

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gankit", *args], env=ENV, capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sample", "--help"], ["bench", "speed", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: gankit" in capsys.readouterr().out


def test_train_then_sample_from_the_command_line(tmp_path, idx_dir, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--epochs", "1",
                 "--batch-size", "32", "--out", str(out), "--quiet", "--set", "model.g_width=8",
                 "--set", "model.d_width=8"])
    assert code == 0 and "done: 4 steps, 1 epochs" in capsys.readouterr().out
    assert main(["sample", str(out), "--num", "6", "--out", str(tmp_path / "s.npz"), "--seed", "3"]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (6, 28, 28, 1)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert "done: 8 steps, 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "optim.lr=1"], "unknown config key 'optim.lr'"),
    (["train", "--loss", "wgan2"], "bad value 'wgan2' for 'loss.name'; allowed:"),
    (["train", "--model", "dcgna"], "unknown model 'dcgna'"),
    (["train", "--dataset", "/no/such/folder"], "neither a known name nor a folder"),
    (["train", "--resume", "/no/such/run"], "is not a gankit run"),
    (["train", "--epochs", "2", "--minutes", "1"], "not allowed with argument"),
    (["sample", "/no/such/run", "--out", "x.png"], "does not exist"),
    (["train", "--batch-size", "many"], "invalid int value"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(args, message, tmp_path):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert not (tmp_path / "runs").exists()  # bad input leaves no half-made run folder
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_resume_with_only_a_config_starts_over(tmp_path, idx_dir, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)  # a run stopped before its first checkpoint: folder and config only
    from gankit.config import save_config
    from tests.conftest import tiny_config
    save_config(tiny_config("dcgan", run, data_dir=idx_dir, steps=3), run / "config.yaml")
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert "done: 3 steps" in capsys.readouterr().out


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "wgan-gp" in out and "resnet-rrb" in out
