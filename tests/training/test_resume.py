"""Resuming: the budget only, damaged and hostile checkpoints, SIGKILL and Ctrl-C, stateful techniques."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.run import list_step_checkpoints, load_file

from ..conftest import SUBPROCESS_ENV, assert_same_weights, newest_checkpoint, read_log, tiny_config, train_tiny


def test_resume_only_changes_the_budget(tmp_path, idx_dir):
    run = train_tiny("dcgan", tmp_path / "run", data_dir=idx_dir)
    with pytest.raises(GankitError, match="cannot change train.batch_size when resuming"):
        gankit.resume(run, {"batch_size": 8}, quiet=True)
    more = gankit.resume(run, {"max_steps": 6}, quiet=True)
    assert more["steps"] == 6


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, idx_dir):
    run = train_tiny("dcgan", tmp_path / "run", data_dir=idx_dir)
    newest = list_step_checkpoints(run)[0]
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="step-000004.pt' is damaged .*falling back"):
        summary = gankit.resume(run, {"max_steps": 5}, quiet=True)
    assert summary["steps"] == 5
    rows = read_log(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]  # rows 3-4 were replayed, not duplicated


def test_checkpoints_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"G": Evil()}, path)
    with pytest.raises(ValueError):
        load_file(path)
    assert not (tmp_path / "pwned").exists()


def _train_cmd(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "gankit", "train", "--dataset", "ring", "--out", str(out), "--max-steps",
            str(steps), "--checkpoint-every", "25", "--batch-size", "64", "--threads", "1", "--quiet",
            "--set", "data.toy_size=4096", "--set", "model.g_hidden=[64, 64]", "--set", "model.d_hidden=[64, 64]",
            "--set", "train.num_samples=64"]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    steps = 600
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(ref, steps), env=SUBPROCESS_ENV, check=True, capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(run, steps), env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once a mid-run checkpoint exists, before the end
        ckpts = list_step_checkpoints(run)
        if ckpts and ckpts[0].name != f"step-{steps:06d}.pt" and int(ckpts[0].stem[5:]) >= 100:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(list_step_checkpoints(run)[0].stem[5:])
    assert killed_at < steps, "the run finished before it could be killed"
    subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(run), "--quiet"],
                   env=SUBPROCESS_ENV, check=True, capture_output=True)
    a = newest_checkpoint(ref)
    b = newest_checkpoint(run)
    assert a["step"] == b["step"] == steps
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume from step {killed_at}"
    rows = [r["step"] for r in read_log(run)]
    assert rows == list(range(1, steps + 1))


def test_ctrl_c_while_the_run_is_being_set_up_still_saves_a_checkpoint(tmp_path, monkeypatch):
    """Regression: a Ctrl-C after log.jsonl existed but before the first step left no checkpoint (CI, loaded)."""
    import gankit.training.loop as loop

    class InterruptedWatch(loop.Watch):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(loop, "Watch", InterruptedWatch)
    try:
        summary = gankit.train(tiny_config("gan-mlp", tmp_path / "run", dataset="ring", steps=50), quiet=True)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during the set-up escaped as KeyboardInterrupt: no checkpoint was saved")
    assert summary["stopped_by"] == "interrupt" and summary["steps"] == 1
    assert len(list_step_checkpoints(tmp_path / "run")) == 1


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    # no epoch budget: the toy preset's 10 epochs of this tiny set end in about a second on an idle machine, and a
    # Ctrl-C that came after the end found no run to stop (the test failed when the machine was fast)
    cmd = _train_cmd(run, 10**6) + ["--set", "train.epochs=null"]
    cmd[cmd.index("--checkpoint-every") + 1] = "100000"
    proc = subprocess.Popen(cmd, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    log = run / "log.jsonl"
    while time.monotonic() < deadline and not (log.is_file() and log.stat().st_size > 0):  # once a step is logged
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "gankit train --resume" in err and "Traceback" not in err
    assert len(list_step_checkpoints(run)) == 1


def test_resume_is_exact_with_stateful_techniques(tmp_path, idx_dir):
    tech = {"replay_size": 32, "replay_ratio": 0.5, "historical_averaging": 0.01, "instance_noise": 0.1,
            "feature_matching": "add", "pack": 2}
    model = {"minibatch_std": True, "minibatch_discrimination": 4}
    straight = gankit.train(tiny_config("dcgan", tmp_path / "a", data_dir=idx_dir, steps=8, tech=tech,
                                        model=model), quiet=True)
    gankit.train(tiny_config("dcgan", tmp_path / "b", data_dir=idx_dir, steps=4, tech=tech, model=model), quiet=True)
    resumed = gankit.resume(tmp_path / "b", {"max_steps": 8}, quiet=True)
    a = newest_checkpoint(straight["run"])
    b = newest_checkpoint(resumed["run"])
    assert_same_weights(a, b)
    assert torch.equal(a["extra"]["tech"]["replay"]["items"], b["extra"]["tech"]["replay"]["items"])
