"""A semi-supervised (K+1) run can be sampled, evaluated and followed with --eval-every: its G is rebuilt
without the labels the K+1 discriminator trains with."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gankit
from gankit.cli import main
from gankit.errors import GankitError

from ..conftest import tiny_config


@pytest.fixture
def ssgan_run(tmp_path, idx_dir, monkeypatch) -> Path:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # the test split (judge, accuracy)
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    cfg = tiny_config("ssgan", tmp_path / "ss", data_dir=idx_dir, steps=None, cond={"labels_per_class": 2},
                      train={"epochs": 2, "max_steps": None, "eval_every": 1, "eval_num": 32, "eval_metric": "kid"})
    gankit.train(cfg, quiet=True)  # --eval-every 1: trains the tiny judge of the fixture set, then scores KID
    return tmp_path / "ss"


def test_ssgan_eval_every_sample_and_eval(ssgan_run, tmp_path, capsys):
    during = [h for h in json.loads((ssgan_run / "metrics.json").read_text())["history"] if "kid" in h["metrics"]]
    assert [h["epoch"] for h in during] == [1, 2] and during[0]["best"] is True
    assert (ssgan_run / "checkpoints" / "best.pt").is_file()
    assert main(["sample", str(ssgan_run), "--num", "12", "--out", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (12, 28, 28, 1)
    assert main(["sample", str(ssgan_run), "--checkpoint", "best", "--out", str(tmp_path / "s.png")]) == 0
    capsys.readouterr()
    assert main(["eval", str(ssgan_run), "--features", "judge", "--num", "32", "--metrics", "fid,kid,is,pr",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"fid", "kid", "is", "precision", "recall", "classes_covered"} <= set(result["metrics"])
    assert result["fake"]["n"] == 32 and "judge" in result["features"]["extractor"]
    assert "class_histogram" not in result["features"]
    report = (ssgan_run / "report.html").read_text()
    assert "gankit eval fid" in report and (ssgan_run / "metrics.png").is_file()


def test_ssgan_g_is_unconditional(ssgan_run, tmp_path):
    with pytest.raises(GankitError, match="--class needs a class-conditional run"):
        gankit.sample(ssgan_run, 4, tmp_path / "c.png", klass="1")
    with pytest.raises(GankitError, match="--per-class needs a class-conditional run"):
        gankit.evaluate(ssgan_run, per_class=True, num=8, device="cpu")
