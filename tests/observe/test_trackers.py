"""Experiment trackers (--tracker): MLflow logs to a local store in the run folder (read back with MLflow's own
client), a missing package or a stray --tracker-uri is one line, and a tracker failing mid-run never ends it."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import gankit
from gankit.cli import main
from gankit.observe.trackers import Tracker, attached

from ..conftest import tiny_config


def mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_mlflow_logs_params_metrics_grids_and_the_model_to_a_local_store_and_resume_continues_its_run(tmp_path):
    pytest.importorskip("mlflow")
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=32,
                      train={"tracker": "mlflow", "eval_every": 1, "eval_num": 200, "sample_every_images": 256})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    client = mlflow_client(f"sqlite:///{run / 'mlflow' / 'mlflow.db'}")
    run_id = json.loads((run / "trackers.json").read_text())["mlflow"]
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert logged.data.params["optim.lr_g"] == "0.0002" and logged.data.params["model.g_hidden"] == "[16, 16]"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss_d")] == list(range(1, 33))
    modes = client.get_metric_history(run_id, "eval/modes")
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [(m.step, m.value) for m in modes] == [(e["step"], e["metrics"]["modes"]) for e in history]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "samples", "model"} <= artifacts
    assert len(client.list_artifacts(run_id, "samples/fixed_z")) == 2  # a grid every 256 images: 16 steps of 16
    assert client.list_artifacts(run_id, "model")  # the exported generator (or its weights)

    gankit.resume(run, {"max_steps": 48}, quiet=True)  # the same MLflow run goes on
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == run_id
    assert [m.step for m in client.get_metric_history(run_id, "train/loss_d")] == list(range(1, 49))


def test_mlflow_logs_to_the_tracking_uri_given(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # a new experiment on a given database keeps its artifacts in ./mlruns (MLflow's default)
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    rc = main(["train", "--dataset", "ring", "--max-steps", "3", "--set", "data.toy_size=256", "--tracker", "mlflow",
               "--tracker-uri", uri, "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0 and not (tmp_path / "run" / "mlflow").exists()
    client = mlflow_client(uri)
    run_id = json.loads((tmp_path / "run" / "trackers.json").read_text())["mlflow"]
    assert len(client.get_metric_history(run_id, "train/loss_g")) == 3


def test_a_missing_tracker_package_or_a_stray_uri_is_one_line(tmp_path, capsys):
    if importlib.util.find_spec("wandb") is None:
        rc = main(["train", "--dataset", "ring", "--max-steps", "2", "--tracker", "wandb", "--out", str(tmp_path / "w")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.endswith("pip install 'gankit[wandb]'") and "\n" not in err
        assert not (tmp_path / "w").exists()  # refused before the run folder is made
    rc = main(["train", "--dataset", "ring", "--max-steps", "2", "--tracker", "tensorboard", "--tracker-uri", "x",
               "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--tracker-uri" in err and "\n" not in err and not (tmp_path / "t").exists()


class Broken(Tracker):
    def __init__(self):
        self.scalars = 0

    def log_scalars(self, step, values):
        self.scalars += 1
        raise ConnectionError("tracking server went away")


def test_a_tracker_that_fails_is_switched_off_with_a_warning_and_the_run_finishes(tmp_path):
    broken = Broken()
    with attached(broken), pytest.warns(UserWarning, match="tracking server went away"):
        summary = gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring", steps=6), quiet=True)
    assert summary["steps"] == 6 and summary["stopped_by"] == "max_steps" and broken.scalars == 1


class FakeWandb:
    """The few names of the wandb package the adapter uses, recording what it is given."""

    def __init__(self):
        self.calls: list = []
        self.util = type("util", (), {"generate_id": staticmethod(lambda: "abc123")})
        self.Settings = lambda **kw: kw
        self.Image = lambda path: ("image", path)

    def init(self, **kw):
        self.calls.append(("init", kw))
        fake = self

        class Run:
            config = type("config", (), {"update": lambda self, c, allow_val_change: fake.calls.append(("config", c))})()

            def log(self, values, step):
                fake.calls.append(("log", step, values))

            def log_artifact(self, art):
                fake.calls.append(("artifact", art.files))

            def finish(self):
                fake.calls.append(("finish",))
        return Run()

    class Artifact:
        def __init__(self, name, type):
            self.files = []

        def add_dir(self, path):
            self.files = sorted(p.name for p in Path(path).iterdir())


def test_wandb_runs_offline_in_the_run_folder_by_default(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(__import__("sys").modules, "wandb", fake)
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    run = Path(gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring", steps=4, train={"tracker": "wandb"}),
                            quiet=True)["run"])
    init = fake.calls[0][1]
    assert (init["mode"], init["dir"], init["id"]) == ("offline", str(run), "abc123")
    assert [c[1] for c in fake.calls if c[0] == "log" and "train/loss_d" in c[2]] == [1, 2, 3, 4]
    assert any(c[0] == "config" and c[1]["train"]["tracker"] == "wandb" for c in fake.calls)
    assert [c[0] for c in fake.calls[-2:]] == ["artifact", "finish"] and fake.calls[-2][1]


def test_an_unreachable_mlflow_server_is_one_line_in_seconds_not_minutes_of_retries(tmp_path):
    """--tracker-uri http://HOST:PORT where nothing answers: MLflow's own backoff (7 retries) would hold the run
    for minutes before training starts; gankit says so in one line at once (the limit here is generous)."""
    import subprocess
    import sys

    from ..conftest import SUBPROCESS_ENV

    pytest.importorskip("mlflow")
    env = {k: v for k, v in SUBPROCESS_ENV.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "--dataset", "ring", "--max-steps", "3", "--set",
                           "data.toy_size=256", "--tracker", "mlflow", "--tracker-uri", "http://127.0.0.1:1", "--out",
                           str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "MLflow tracking store 'http://127.0.0.1:1' failed" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing trained: no half-made run blocks the same --out


def test_a_tracker_that_fails_before_the_first_step_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    """Regression: the folder made for the run stayed (config, empty checkpoints/), so the corrected command was
    refused with "already holds a run". A plain folder as MLflow store gets the database URI to use instead."""
    pytest.importorskip("mlflow")
    from gankit.cli import main

    args = ["train", "--dataset", "ring", "--max-steps", "2", "--quiet", "--set", "data.toy_size=256",
            "--out", str(tmp_path / "run")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(args[:-1] + [str(empty), "--tracker", "mlflow", "--tracker-uri", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert f"--tracker-uri sqlite:///{(tmp_path / 'store').resolve() / 'mlflow.db'}" in err and "Traceback" not in err
    assert empty.is_dir() and not any(empty.iterdir())  # the user's empty folder stays, emptied again
    assert main(args + ["--tracker", "mlflow", "--tracker-uri", str(tmp_path / "store")]) == 2
    assert not (tmp_path / "run").exists()
    capsys.readouterr()
    assert main(args) == 0 and (tmp_path / "run" / "checkpoints").is_dir()


def test_a_failed_start_also_removes_the_parent_folders_made_for_it(tmp_path, capsys):
    """Regression: `--out new/deep/run` that failed before its first step left new/deep/ behind; a parent that
    holds anything else (or existed before) stays."""
    pytest.importorskip("mlflow")
    from gankit.cli import main

    bad = ["--tracker", "mlflow", "--tracker-uri", str(tmp_path / "store")]
    args = ["train", "--dataset", "ring", "--max-steps", "2", "--quiet", "--set", "data.toy_size=256"]
    assert main(args + ["--out", str(tmp_path / "new" / "deep" / "run")] + bad) == 2
    assert not (tmp_path / "new").exists() and tmp_path.is_dir()
    (tmp_path / "kept" / "deep").mkdir(parents=True)
    (tmp_path / "kept" / "notes.txt").write_text("x")
    assert main(args + ["--out", str(tmp_path / "kept" / "deep" / "more" / "run")] + bad) == 2
    assert (tmp_path / "kept" / "deep").is_dir() and not (tmp_path / "kept" / "deep" / "more").exists()
    capsys.readouterr()


def test_discarding_a_failed_start_never_touches_a_run_that_has_trained(tmp_path):
    """A failure after steps that left only best.pt or metrics.json (no step checkpoint, nothing logged yet) keeps
    the folder; a failed `--resume` with a bad tracker leaves config.yaml as it was."""
    from gankit.training.loop import remove_made_folders, remove_start_files

    def discard_unstarted(run, existed, made=None):  # what train() does after a failed start
        if remove_start_files(run):
            remove_made_folders(run, existed, made)

    for name in ("checkpoints/best.pt", "metrics.json", "checkpoints/minute-2.pt"):
        run = tmp_path / name.replace("/", "-")
        (run / "checkpoints").mkdir(parents=True)
        (run / "log.jsonl").write_text("")
        (run / name).write_text("x")
        discard_unstarted(run, existed=False)
        assert (run / name).is_file()
    fresh = tmp_path / "fresh"
    (fresh / "checkpoints").mkdir(parents=True)
    (fresh / "config.yaml").write_text("x")
    discard_unstarted(fresh, existed=False, made=fresh)
    assert not fresh.exists()


def test_discarding_a_failed_start_removes_only_what_the_run_wrote(tmp_path):
    """Regression: the clean-up emptied the whole --out folder, so a file another process put there, or a run
    training in a subfolder, was deleted with it."""
    from gankit.training.loop import remove_made_folders, remove_start_files

    for existed in (True, False):
        run = tmp_path / f"run-{existed}"
        for d in ("checkpoints", "samples", "mlflow/artifacts", "sub/checkpoints"):
            (run / d).mkdir(parents=True)
        for f in ("config.yaml", "log.jsonl", "trackers.json", "other.txt", "sub/config.yaml"):
            (run / f).write_text("")
        assert remove_start_files(run)
        remove_made_folders(run, existed=existed, made=None if existed else run)
        assert sorted(p.name for p in run.iterdir()) == ["other.txt", "sub"]
        assert (run / "sub" / "checkpoints").is_dir() and (run / "sub" / "config.yaml").is_file()
    # the files go while the run still holds its lock (RUN/.lock, let go after), so a second process that takes
    # the lock in between keeps its own lock and config
    held = tmp_path / "held"
    (held / "checkpoints").mkdir(parents=True)
    (held / ".lock").write_text("123")
    (held / "config.yaml").write_text("x")
    assert remove_start_files(held) and sorted(p.name for p in held.iterdir()) == [".lock"]


def test_out_with_dot_dot_is_checked_and_cleaned_as_the_folder_it_names(tmp_path, capsys):
    """Regression: `--out base/missing/..` passed the checks (as written it did not exist) and a failed start
    then deleted everything in base; `base/new/../kept/run` removed the existing, empty `kept`."""
    pytest.importorskip("mlflow")
    from gankit.cli import main

    base = tmp_path / "base"
    (base / "kept").mkdir(parents=True)
    (base / "keepme.txt").write_text("x")
    bad = ["--tracker", "mlflow", "--tracker-uri", str(tmp_path / "store")]
    args = ["train", "--dataset", "ring", "--max-steps", "2", "--quiet", "--set", "data.toy_size=256"]
    assert main(args + ["--out", str(base / "missing" / "..")] + bad) == 2
    assert "is a folder of other files" in capsys.readouterr().err
    assert main(args + ["--out", str(base / "new" / ".." / "kept" / "run")] + bad) == 2
    capsys.readouterr()
    assert sorted(p.name for p in base.iterdir()) == ["keepme.txt", "kept"] and (base / "kept").is_dir()


def test_a_resume_whose_tracker_fails_keeps_the_runs_config(tmp_path, capsys):
    pytest.importorskip("mlflow")
    from gankit.cli import main

    run = tmp_path / "run"
    assert main(["train", "--dataset", "ring", "--max-steps", "2", "--quiet", "--set", "data.toy_size=256",
                 "--out", str(run)]) == 0
    before = (run / "config.yaml").read_text()
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--tracker", "mlflow", "--tracker-uri",
                 str(tmp_path / "store")]) == 2
    assert (run / "config.yaml").read_text() == before
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--quiet"]) == 0
