"""Issue 13, "a run is never lost or mixed": locks, --out checks, a deleted run folder, a full disk, a foreign
checkpoint, Ctrl-C during a checkpoint write, and the switches that were wrong (numbers are the issue's)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.run import RunLock, list_step_checkpoints, load_file
from tests.conftest import tiny_config

from .helpers import one_error_line


def _toy(out: Path, steps: int = 4, **sections):
    return tiny_config("toy", out, dataset="ring", steps=steps, **sections)


# ------------------------------------------------------------------ 10: locks
def test_a_second_process_training_in_the_same_run_is_refused_with_its_pid(tmp_path, capsys):
    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".lock").write_text(str(holder.pid))
        assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet"]) == 2
        assert f"PID {holder.pid}" in one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert load_file(list_step_checkpoints(run)[0])["step"] == 4  # the refused resume trained nothing


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".lock").write_text(str(dead.pid))
    with pytest.warns(UserWarning, match="taking over the lock"):
        summary = gankit.resume(run, {"max_steps": 6}, quiet=True)
    assert summary["steps"] == 6 and not (run / ".lock").exists()  # released at the end


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path):
        other = RunLock(tmp_path)
        other.path.write_text(str(os.getppid()))  # a live process that is not us
        with pytest.raises(GankitError, match="in use by another gankit process"):
            RunLock(tmp_path).acquire()


# ------------------------------------------------------------------ 11: where a run may be written
def test_out_refuses_a_folder_of_other_files_a_file_and_system_folders(tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "config.yaml").write_text("not a gankit config\n")
    (mine / "holiday.png").write_bytes(b"precious")
    for out, words in ((mine, "not a gankit run"), (tmp_path / "photos" / "holiday.png", "is a file"),
                       (Path("/"), "system or home folder")):
        assert main(["train", "--dataset", "ring", "--max-steps", "1", "--out", str(out), "--quiet"]) == 2
        assert words in one_error_line(capsys)
    assert (mine / "config.yaml").read_text() == "not a gankit config\n"  # nothing of the user's overwritten
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("x")
    assert main(["train", "--dataset", "ring", "--max-steps", "1", "--out", str(other), "--quiet"]) == 2
    assert "not a gankit run" in one_error_line(capsys)


def test_out_as_a_dangling_link_names_the_missing_target(tmp_path, capsys):
    """Regression: a link to a folder that is gone got "could not write", hiding that the target is missing."""
    link = tmp_path / "latest"
    link.symlink_to(tmp_path / "gone")
    assert main(["train", "--dataset", "ring", "--max-steps", "1", "--out", str(link), "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "is a link to" in line and "gone" in line and "does not exist" in line
    assert not (tmp_path / "gone").exists()
    assert main(["train", "--dataset", "ring", "--max-steps", "1", "--out", str(link / "run"), "--quiet"]) == 2
    line = one_error_line(capsys)  # a dangling link among the parents too
    assert f"'{link}' is a link to" in line and "does not exist" in line
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert main(["train", "--dataset", "ring", "--max-steps", "1", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "is a loop of links" in one_error_line(capsys)  # not "a link to 'b', which does not exist"


# ------------------------------------------------------------------ 12: the run folder deleted while training
def test_a_run_folder_deleted_while_training_stops_with_an_error(tmp_path, monkeypatch, capsys):
    import shutil

    import gankit.training.gan as gan

    run = tmp_path / "run"
    real_step = gan.GanRecipe.step

    def step_then_delete(self, batch, step):
        if step == 2:
            shutil.rmtree(run)
        return real_step(self, batch, step)

    monkeypatch.setattr(gan.GanRecipe, "step", step_then_delete)
    code = main(["train", "--dataset", "ring", "--set", "data.toy_size=512", "--max-steps", "50",
                 "--out", str(run), "--quiet"])
    assert code == 2 and "was deleted while training" in one_error_line(capsys)


# ------------------------------------------------------------------ 13: disk full
def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays(tmp_path, monkeypatch, capsys):
    import gankit.run as runmod

    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    before = list_step_checkpoints(run)
    real_save = torch.save

    def full(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runmod.torch, "save", full)
    assert main(["train", "--resume", str(run), "--max-steps", "8", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "No space left on device" in line and "free" in line and "--resume" in line
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]  # no partial file left
    assert list_step_checkpoints(run) == before and load_file(before[0])["step"] == 4
    monkeypatch.setattr(runmod.torch, "save", real_save)  # space freed: resume works
    assert gankit.resume(run, {"max_steps": 8}, quiet=True)["steps"] == 8


# ------------------------------------------------------------------ 14: a checkpoint of another run
def test_a_swapped_checkpoint_is_refused_by_sample_and_skipped_by_resume(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    gankit.train(_toy(a), quiet=True)
    gankit.train(_toy(b, model={"g_hidden": [8, 8]}), quiet=True)
    foreign = list_step_checkpoints(b)[0]
    (a / "checkpoints" / "step-000099.pt").write_bytes(foreign.read_bytes())  # newest in a: b's file
    assert main(["sample", str(a), "--out", str(tmp_path / "s.png")]) == 2
    assert "does not belong to the run" in one_error_line(capsys)
    with pytest.warns(UserWarning, match="not made with this run's config"):
        summary = gankit.resume(a, {"max_steps": 6}, quiet=True)
    assert summary["steps"] == 6  # continued from a's own step 4, not from the foreign file


def test_an_edited_config_yaml_is_detected(tmp_path, capsys):
    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("latent_dim: 8", "latent_dim: 9"))
    assert main(["eval", str(run), "--metrics", "modes", "--num", "100"]) == 2
    assert "does not belong to the run" in one_error_line(capsys)


def test_a_run_saved_by_an_older_gankit_stays_loadable_and_resumable(tmp_path, capsys):
    """Regression: a run trained before a config key existed (its config.yaml and checkpoints lack tech.r2_gamma)
    and whose checkpoints carry the fingerprint of an older definition was refused by sample, eval and resume
    ("does not belong to the run") after an upgrade. The config each checkpoint carries proves it is the run's."""
    import yaml

    from gankit.run import atomic_save

    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    written = yaml.safe_load((run / "config.yaml").read_text())
    del written["tech"]["r2_gamma"]
    (run / "config.yaml").write_text(yaml.safe_dump(written))
    for path in list_step_checkpoints(run):
        ckpt = load_file(path)
        del ckpt["config"]["tech"]["r2_gamma"]
        ckpt["fingerprint"] = "0123456789abcdef"  # what an older definition of the fingerprint gave
        atomic_save(ckpt, path)
    assert main(["eval", str(run), "--metrics", "modes", "--num", "100", "--no-record"]) == 0
    assert gankit.resume(run, {"max_steps": 6}, quiet=True)["steps"] == 6
    capsys.readouterr()
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("latent_dim: 8", "latent_dim: 9"))
    assert main(["eval", str(run), "--metrics", "modes", "--num", "100"]) == 2  # an edit is still caught
    assert "does not belong to the run" in one_error_line(capsys)


# ------------------------------------------------------------------ 15: Ctrl-C during a checkpoint write
def test_ctrl_c_during_a_checkpoint_write_comes_after_the_write(tmp_path, monkeypatch):
    import signal

    from gankit.run import atomic_save

    real_save = torch.save

    def interrupted_save(obj, f, *a, **k):
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the write
        real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"step": 1, "config": {}}, tmp_path / "ckpt.pt")
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] == 1  # complete, then interrupted


# ------------------------------------------------------------------ 2, 4: switches that were wrong
def test_experience_replay_keeps_the_classes_of_old_fakes():
    from gankit.training.techniques import ReplayBuffer

    buf = ReplayBuffer(size=8, ratio=0.5, shape=(2,), y_like=torch.zeros(1, dtype=torch.long))
    buf.mix(torch.ones(4, 2), torch.full((4,), 7))
    x, y = buf.mix(torch.zeros(4, 2), torch.full((4,), 3))
    assert torch.equal(x[:2], torch.ones(2, 2)) and torch.equal(y[:2], torch.tensor([7, 7]))  # old fakes, old classes
    assert torch.equal(y[2:], torch.tensor([3, 3]))


def test_classify_works_on_a_spectrally_normalised_semi_supervised_run(tmp_path, idx_dir):
    from PIL import Image

    from gankit.metrics.classify import classify

    cfg = tiny_config("ssgan", tmp_path / "run", data_dir=idx_dir, tech={"spectral_norm": True},
                      cond={"labels_per_class": 2})
    run = gankit.train(cfg, quiet=True)["run"]
    Image.new("L", (28, 28), 128).save(tmp_path / "x.png")
    rows = classify(run, [str(tmp_path / "x.png")])
    assert rows[0]["class"] in range(10) and 0 < rows[0]["probability"] <= 1


def test_resuming_a_finished_run_without_more_budget_trains_nothing(tmp_path):
    run = tmp_path / "run"
    gankit.train(_toy(run), quiet=True)
    summary = gankit.resume(run, {}, quiet=True)
    assert summary["steps"] == 4 and summary["stopped_by"] == "max_steps"
    assert load_file(list_step_checkpoints(run)[0])["step"] == 4


# ------------------------------------------------------------------ 13 again: a real full disk (a small tmpfs)
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only); skipped with the reason where it cannot be mounted."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}); the monkeypatched test above covers it")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_disk_keeps_the_previous_checkpoint_and_resume_works_after(small_disk, capsys):
    run = small_disk / "run"
    gankit.train(_toy(run), quiet=True)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last byte
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert main(["train", "--resume", str(run), "--max-steps", "8", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "No space left on device" in line and "MiB free" in line
    assert load_file(list_step_checkpoints(run)[0])["step"] == 4
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    assert gankit.resume(run, {"max_steps": 8}, quiet=True)["steps"] == 8


# ------------------------------------------------------------------ 11, 20: gankit translate
def test_translate_refuses_its_input_as_output_and_keeps_same_stem_inputs_apart(tmp_path, paired, capsys):
    from PIL import Image

    from tests.conftest import TINY_I2I

    run = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY_I2I, "--max-steps", "1",
                 "--out", str(run)]) == 0
    src = tmp_path / "in"
    src.mkdir()
    Image.new("L", (20, 20), 0).save(src / "a.png")
    Image.new("L", (20, 20), 255).save(src / "a.jpg")
    (src / "b.png").write_bytes((src / "a.png").read_bytes()[:40])  # truncated
    capsys.readouterr()
    assert main(["translate", str(run), str(src), "--out", str(src)]) == 2
    assert "is the input folder" in one_error_line(capsys)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        assert main(["translate", str(run), str(src), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.png.png"]


# ------------------------------------------------------------------ 21: damaged run files
def test_a_log_with_rows_that_are_not_objects_is_read_past(tmp_path):
    from gankit.run import read_log

    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"step": 1}\n[1, 2]\n"text"\n\xff\xfe not json\n{"step": 2}\n{"step": 3, "torn')
    assert read_log(log) == [{"step": 1}, {"step": 2}]
