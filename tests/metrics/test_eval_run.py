"""`gankit eval RUN` through gankit.evaluate: what it scores, what it records, and what it prints first."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics import history
from gankit.metrics.features import Extractor

from ..conftest import tiny_config
from ..faults.helpers import one_error_line


@pytest.fixture
def toy_run(tmp_path) -> Path:
    return Path(gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring"), quiet=True)["run"])


def test_eval_redraws_the_report_and_the_metric_plot(toy_run, capsys):
    assert "No evaluation yet" in (toy_run / "report.html").read_text()
    assert main(["eval", str(toy_run), "--num", "300"]) == 0
    assert "No evaluation yet" not in (toy_run / "report.html").read_text()
    assert "gankit eval modes" in (toy_run / "report.html").read_text()
    assert (toy_run / "metrics.png").is_file()


def test_a_run_that_cannot_be_written_prints_its_scores_first(toy_run, monkeypatch, capsys):
    def read_only(path, rows):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(history, "_write", read_only)
    assert main(["eval", str(toy_run), "--num", "300"]) == 2
    out = capsys.readouterr()
    assert out.out.splitlines()[0].split()[0] == "modes"  # the scores came out
    errors = [line for line in out.err.splitlines() if line.startswith("gankit: error:")]
    assert len(errors) == 1 and "Permission denied" in errors[0] and "not saved" in errors[0]
    assert "Traceback" not in out.err
    assert not (toy_run / "metrics.json").exists()


def test_no_record_leaves_the_run_alone(toy_run, capsys):
    before = (toy_run / "report.html").read_bytes()
    assert main(["eval", str(toy_run), "--num", "300", "--no-record", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fake"]["n"] == 300
    assert not (toy_run / "metrics.json").exists() and (toy_run / "report.html").read_bytes() == before


def test_the_python_api_shows_then_records(toy_run):
    seen = []
    result = gankit.evaluate(toy_run, metrics="modes", num=300, device="cpu",
                             show=lambda r, table: seen.append((table, (toy_run / "metrics.json").exists())))
    assert result["metrics"]["total_modes"] == 8 and result["fake"]["n"] == 300
    table, recorded_yet = seen[0]
    assert table.splitlines()[0].split()[0] == "modes" and not recorded_yet
    assert history.read_history(toy_run / "metrics.json")[-1]["fake"]["n"] == 300
    again = gankit.evaluate(toy_run, num=300, device="cpu", record=False)
    assert again["metrics"] == result["metrics"]  # the same seed, the same samples
    assert len(history.read_history(toy_run / "metrics.json")) == 1


@pytest.mark.parametrize("num", ["0", "-5"])
def test_eval_num_must_be_positive(toy_run, tmp_path, capsys, num):
    """--num 0 used to mean the default 10,000."""
    assert main(["eval", str(toy_run), "--num", num]) == 2
    assert f"--num must be positive, got {num}" in one_error_line(capsys)
    assert main(["eval", "--real", "ring", "--fake", str(tmp_path / "x.npz"), "--num", num]) == 2
    assert "--num must be positive" in one_error_line(capsys)


def test_eval_num_beyond_memory_is_refused_before_generating(tmp_path, idx_dir, monkeypatch, capsys):
    from gankit import sampling

    run = gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir), quiet=True)["run"]
    monkeypatch.setattr(sampling, "available_memory", lambda: 10 << 20)  # 10 MiB free
    assert main(["eval", run, "--num", "5000", "--metrics", "fid"]) == 2
    assert "--num 5,000 needs about" in one_error_line(capsys)
    assert main(["eval", run, "--num", "2000000"]) == 2
    assert "over the limit of 1,000,000" in one_error_line(capsys)


def test_requests_that_name_nothing_to_score(toy_run, tmp_path, capsys):
    assert main(["eval", str(toy_run), "--real", "ring"]) == 2
    assert "either RUN_DIR or --real" in one_error_line(capsys)
    assert main(["eval", "--per-class", "--real", "ring", "--fake", "x.npz"]) == 2
    assert "--per-class scores a run" in one_error_line(capsys)
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a gankit run" in one_error_line(capsys)
    assert main(["eval", str(toy_run), "--features", "clip", "--metrics", "modes"]) == 0  # points need no features
    capsys.readouterr()
    np.savez(tmp_path / "s.npz", images=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(GankitError, match="unknown feature extractor 'clip'; available: auto, inception, judge"):
        gankit.evaluate(real=str(tmp_path / "s.npz"), fake=str(tmp_path / "s.npz"), features="clip", metrics="kid")


def _pairs(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            a, b = np.zeros((20, 20)), np.zeros((20, 20))
            y, x = rng.integers(2, 10, 2)
            b[y:y + 8, x:x + 8] = 255
            a[y, x:x + 8] = a[y + 7, x:x + 8] = 255
            Image.fromarray(np.concatenate([a, b], axis=1).astype(np.uint8)).save(root / split / f"{i:03d}.png")
    return root


def test_an_image_to_image_run_is_scored_on_held_out_pairs(tmp_path, capsys):
    run = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(_pairs(tmp_path / "pairs")), "--epochs", "1",
                 "--out", str(run), "--image-size", "16", "--batch-size", "4", "--set", "model.g_width=8",
                 "--set", "model.d_width=8", "--set", "i2i.patch_layers=1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == {"pairs": 4} and all(np.isfinite(v) for v in result["metrics"].values())
    assert history.read_history(run / "metrics.json")[-1]["metrics"] == result["metrics"]
    assert "No evaluation yet" not in (run / "report.html").read_text()
    assert main(["eval", str(run), "--metrics", "fid"]) == 2
    assert "held-out images" in one_error_line(capsys)


def test_split_test_scores_against_the_whole_test_split_of_a_run_on_a_subset(tmp_path, idx_dir, monkeypatch, capsys):
    """A run trained on 16 images (data.limit) is judged with --split test against all 40 test images, which are
    not its training images; a run without held-out images gets one error line naming --split train."""
    from gankit.metrics.judge import train_judge

    from ..conftest import write_idx

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))

    test_images = np.full((40, 28, 28), 7, np.uint8)
    write_idx(idx_dir / "t10k-images-idx3-ubyte.gz", test_images)
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.arange(40) % 10)
    train_judge("fashion-mnist", str(idx_dir), epochs=1, log=lambda m: None)
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=2, data={"limit": 16})
    run = gankit.train(cfg, quiet=True)["run"]
    on_train = gankit.evaluate(run, metrics="kid", features="judge", num=100, record=False)
    on_test = gankit.evaluate(run, metrics="kid", features="judge", num=100, record=False, split="test")
    assert on_train["real"] == {"source": "fashion-mnist", "kind": "dataset", "split": "train", "n": 16}
    assert on_test["real"]["split"] == "test" and on_test["real"]["n"] == 40
    assert on_test["metrics"]["kid"] != on_train["metrics"]["kid"]
    # statistics kept with --real-stats are of one reference set: the other split is refused, not reused
    stats = str(tmp_path / "stats.npz")
    gankit.evaluate(run, metrics="kid", features="judge", num=100, record=False, real_stats=stats)
    assert main(["eval", run, "--split", "test", "--metrics", "kid", "--features", "judge", "--real-stats", stats]) == 2
    assert "holds statistics of another reference set" in one_error_line(capsys)
    # the test files moved: the error says what is missing, and --data-dir finds them
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).rename(moved / name)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (moved / name).write_bytes((idx_dir / name).read_bytes())
    assert main(["eval", run, "--split", "test", "--metrics", "kid", "--features", "judge", "--num", "16"]) == 2
    line = one_error_line(capsys)
    assert "no held-out images to score against (the fashion-mnist test split (t10k-*-ubyte files) not found" in line
    assert "--data-dir" in line and "--split train" in line
    assert main(["eval", run, "--split", "test", "--metrics", "kid", "--features", "judge", "--num", "100",
                 "--data-dir", str(moved), "--json", "--no-record"]) == 0
    assert json.loads(capsys.readouterr().out)["real"]["n"] == 40
    assert main(["eval", "--split", "test"]) == 2
    assert "nothing to score" in one_error_line(capsys)


def test_a_reference_set_too_small_for_the_metrics_is_one_line(tmp_path, idx_dir, capsys):
    """A run holding out 3 images (data.holdout on 24) scored with --split test: precision/recall's k-nearest
    neighbours and FID's covariance need more; one line instead of a traceback from deep in the metric."""
    run = gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=2,
                                   data={"limit": 24, "holdout": 0.125}), quiet=True)["run"]
    from gankit.metrics import evaluate

    fake = Extractor("test", lambda x: (np.random.default_rng(0).normal(size=(len(x), 4)), np.full((len(x), 2), 0.5)), {})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate, "choose_extractor", lambda *a, **k: fake)
        assert main(["eval", run, "--split", "test", "--metrics", "fid,pr", "--num", "50"]) == 2
    line = one_error_line(capsys)
    assert "3 reference images and 50 samples" in line and "at least 10" in line
