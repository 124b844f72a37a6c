"""metrics.json of the wrong shape: read for what it holds, one warning line, never a traceback or a loss."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import gankit
from gankit.cli import main
from gankit.metrics.history import append_history, read_history

from ..conftest import tiny_config

GOOD = {"step": 4, "metrics": {"modes": 3.0}}


@pytest.mark.parametrize("text, kept, why", [
    (json.dumps([GOOD, GOOD]), 2, "bare list"),
    (json.dumps({"history": [GOOD, 7, "x", None, {"step": 1}, {"metrics": [1]}]}), 1, "5 entries that are not results"),
    (json.dumps({"history": {"a": GOOD}}), 0, "without a \"history\" list"),
    (json.dumps("history"), 0, "holds a str"),
    ("{\"history\": [", 0, "is not JSON"),
    ("[" * 100_000 + "]" * 100_000, 0, "is not JSON"),
])
def test_wrong_shapes_are_read_for_what_they_hold(tmp_path, text, kept, why):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.warns(UserWarning, match=why) as caught:
        rows = read_history(path)
    assert rows == [GOOD] * kept and len(caught) == 1 and "\n" not in str(caught[0].message)


def test_a_good_file_reads_silently_and_appending_keeps_the_damaged_one(tmp_path):
    path = tmp_path / "metrics.json"
    append_history(path, GOOD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_history(path) == [GOOD]
    path.write_text(json.dumps({"history": [GOOD, 42]}))
    with pytest.warns(UserWarning):
        append_history(path, {"step": 8, "metrics": {"modes": 5.0}})
    assert [r["step"] for r in read_history(path)] == [4, 8]
    assert json.loads((tmp_path / "metrics.json.damaged").read_text()) == {"history": [GOOD, 42]}


def test_eval_and_compare_of_a_run_with_a_damaged_metrics_json(tmp_path, capsys):
    run = gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring"), quiet=True)["run"]
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"history": [1, ["x"], {"best": True}]}))
    with pytest.warns(UserWarning, match="3 entries that are not results"):
        assert main(["compare", run, run, "--out", str(tmp_path / "c.html")]) == 0
    r = subprocess.run([sys.executable, "-m", "gankit", "eval", run, "--num", "200"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(gankit.__file__).parents[1])})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [f"gankit: warning: '{run}/metrics.json' has 3 entries that are not results "
                                     "(objects with \"metrics\"); skipped"]
    assert r.stdout.startswith("modes ")
    assert [h["fake"]["n"] for h in read_history(tmp_path / "run" / "metrics.json")] == [200]
    assert "No evaluation yet" not in (tmp_path / "run" / "report.html").read_text()
