"""`gankit tune` on an SQLite study: worker processes share the N trials, a re-run continues the study, a dead
worker's trial and an interrupted one are run again, and the folder ends with best.yaml, trials.csv, plots and
summary.html."""
from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import yaml

from gankit.cli import main
from gankit.config import build_config
from gankit.tune.summary import trial_rows

from ..conftest import SUBPROCESS_ENV, read_log
from .conftest import TINY_ARGS, read_study, states, tune_tiny


def finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]


def test_two_workers_finish_n_trials_none_lost_or_run_twice_and_a_rerun_continues(tmp_path, space):
    out = tmp_path / "tune"
    result = tune_tiny(space, out, 2, jobs=2)
    study = read_study(out)
    assert result["finished"] == 2 and set(states(study)) <= {"complete", "pruned"}
    first = {t.number: (t.params, t.value) for t in finished(study)}
    assert sorted(first) == [0, 1]  # no trial lost, none failed
    assert sorted(p.name for p in out.glob("trial-*")) == ["trial-0000", "trial-0001"]
    for t in finished(study):  # each trial trained once, in its own folder, with its own values
        cfg = yaml.safe_load((out / f"trial-{t.number:04d}" / "config.yaml").read_text())
        assert (cfg["optim"]["lr_g"], cfg["optim"]["lr_d"]) == (t.params["optim.lr_g"], t.params["optim.lr_d"])
        steps = [r["step"] for r in read_log(out / f"trial-{t.number:04d}")]
        assert steps == list(range(1, t.user_attrs["steps"] + 1))
    assert len({t.user_attrs["host"] for t in finished(study)}) == 1

    again = tune_tiny(space, out, 3)  # the same study with N = 3: one more, the first two kept
    study = read_study(out)
    assert again["finished"] == 3 and len(finished(study)) == 3 and "fail" not in states(study)
    assert {t.number: (t.params, t.value) for t in finished(study) if t.number < 2} == first
    assert len(list(out.glob("trial-*"))) == 3
    tune_tiny(space, out, 3)  # nothing left to do
    assert len(read_study(out).get_trials()) == 3


def test_the_tune_folder_ends_with_a_trainable_best_config_a_table_plots_and_a_page(tmp_path, space, capsys):
    out = tmp_path / "tune"
    rc = main(["tune", "--preset", "toy", "--dataset", "ring", "--space", str(space), "--trials", "2", "--minutes", "1",
               "--out", str(out), *TINY_ARGS])
    printed = capsys.readouterr().out
    assert rc == 0 and "best: trial" in printed and "best.yaml" in printed
    study = read_study(out)
    best = study.best_trial
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [int(r["trial"]) for r in rows] == [0, 1] and {"modes", "reverse_kl", "optim.lr_g", "run"} <= set(rows[0])
    assert float(rows[best.number]["value"]) == best.value
    page = (out / "summary.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "src=\"http" not in page
    assert (out / "history.png").is_file()

    cfg = build_config(None, str(out / "best.yaml"))  # what `gankit train --config best.yaml` builds
    assert (cfg.preset, cfg.data.dataset, cfg.optim.lr_g, cfg.optim.lr_d) == (
        "toy", "ring", best.params["optim.lr_g"], best.params["optim.lr_d"])
    trial_cfg = build_config(None, str(out / f"trial-{best.number:04d}" / "config.yaml"))
    want = trial_cfg.to_dict()
    want["train"].update(out=None, threads=None)  # the trial's config, less its folder and the tune's threads
    assert cfg.to_dict() == want
    rc = main(["train", "--config", str(out / "best.yaml"), "--max-steps", "3", "--out", str(tmp_path / "again"), "--quiet"])
    assert rc == 0 and yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())["optim"]["lr_g"] == cfg.optim.lr_g
    shutil.rmtree(out / "trial-0001")  # the table says so, rather than naming a folder that is gone
    assert [r["note"] for r in trial_rows(study)] == ["", "run folder deleted"]


def test_a_trial_whose_worker_died_is_run_again(tmp_path, space):
    from gankit.tune.study import open_storage

    out = tmp_path / "tune"
    tune_tiny(space, out, 1, heartbeat=1)
    study = read_study(out)
    dead = study.ask()  # a worker took trial 1, beat once, and was killed
    open_storage(f"sqlite:///{out / 'study.db'}", heartbeat=1).record_heartbeat(dead._trial_id)
    result = tune_tiny(space, out, 2, heartbeat=1)  # waits until it is stale (3 s), then runs its retry
    study = read_study(out)
    by = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert result["finished"] == 2 and by[1].state.name == "FAIL" and by[2].state.name in ("COMPLETE", "PRUNED")
    assert by[2].system_attrs.get("failed_trial") == 1
    rows = {int(r["trial"]): r for r in csv.DictReader(open(out / "trials.csv"))}
    assert rows[2]["retry_of"] == "1"


def test_ctrl_c_stops_the_trial_cleanly_and_the_same_command_continues(tmp_path, space):
    out = tmp_path / "tune"
    argv = ["tune", "--preset", "toy", "--dataset", "ring", "--space", str(space), "--trials", "1", "--minutes", "0.05",
            "--out", str(out), *[a.replace("max_steps=20", "max_steps=100000") for a in TINY_ARGS]]
    proc = subprocess.Popen([sys.executable, "-m", "gankit", *argv], env=SUBPROCESS_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = out / "trial-0000" / "log.jsonl"
    deadline = time.time() + 120
    while not (log.is_file() and log.stat().st_size > 0) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    study = read_study(out)
    t0 = study.trials[0]
    assert t0.state.name == "FAIL" and t0.user_attrs["interrupted"] and t0.user_attrs["stopped_by"] == "interrupt"
    assert json.loads((out / "trial-0000" / "log.jsonl").read_text().splitlines()[-1])["step"] >= 1
    assert study.trials[1].state.name == "WAITING" and study.trials[1].system_attrs["fixed_params"] == t0.params

    assert main(argv) == 0  # the same command: the queued trial runs, with the same values
    study = read_study(out)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"] and study.trials[1].params == t0.params


def test_a_bare_postgresql_url_as_the_help_shows_uses_the_installed_psycopg2_driver():
    """--storage postgresql://... (the form --help and the README show) goes through psycopg2, the driver of the
    `postgres` extra, not SQLAlchemy 2.1's default psycopg 3: an unreachable server is reported as such."""
    import pytest

    from gankit.errors import GankitError
    from gankit.tune.study import open_storage

    pytest.importorskip("psycopg2")
    with pytest.raises(GankitError) as e:
        open_storage("postgresql://nobody@127.0.0.1:1/db")
    assert "DB access module" not in str(e.value) and "127.0.0.1" in str(e.value)


def test_set_of_the_trial_budget_or_folder_is_refused_not_left_to_override_minutes(tmp_path, space, capsys):
    """--set train.minutes=5 used to replace --minutes (each trial then trained 5 minutes); train.out was
    replaced by the trial folder without a word. Both are one line before any trial starts."""
    for key, option in (("train.minutes=5", "--minutes"), ("train.out=elsewhere", "--out")):
        argv = ["tune", "--preset", "toy", "--dataset", "ring", "--space", str(space), "--trials", "1", "--minutes",
                "0.05", "--out", str(tmp_path / "t"), *TINY_ARGS, "--set", key]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"--set {key.split('=')[0]}" in err and option in err and "Traceback" not in err
    assert not (tmp_path / "t").exists()


def test_a_trial_that_failed_before_its_run_began_is_not_said_to_have_a_deleted_folder(tmp_path):
    """Regression: a trial refused before training (a bad batch size) made no folder, yet trials.csv said
    "run folder deleted" as if the user had removed it."""
    import socket

    import optuna

    study = optuna.create_study()
    attrs = {"run": str(tmp_path / "trial-0000"), "host": socket.gethostname()}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={**attrs, "error": "fewer examples than the batch"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0,
                                              user_attrs={**attrs, "steps": 5}))
    assert [r["note"] for r in trial_rows(study)] == ["fewer examples than the batch", "run folder deleted"]
