import json
import math

from gankit.bench.fashion import FASHION_CONFIGS
from gankit.cli import main


def test_bench_fashion_trains_each_config_per_seed_and_judges_it(tmp_path, idx_dir, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # the judge's test split
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    args = ["bench", "fashion", "--configs", "DCGAN,EMA", "--seeds", "2", "--minutes", "0.01", "--num", "64",
            "--data-dir", str(idx_dir), "--out", str(tmp_path / "runs"),
            "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "train.batch_size=32"]
    assert main(args + ["--json", "--jobs", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["config"], r["seed"]) for r in rows] == [("DCGAN", 0), ("DCGAN", 1), ("EMA", 0), ("EMA", 1)]
    assert list(rows[0]) == ["config", "setting", "dataset", "seed", "steps", "seconds", "fid", "kid", "precision",
                             "recall", "classes_covered", "class_kl", "minutes"]
    assert all(r["steps"] >= 1 and r["fid"] > 0 and 1 <= r["classes_covered"] <= 10 for r in rows)
    assert all(0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 for r in rows)
    assert (tmp_path / "runs" / "EMA-1" / "metrics.json").is_file()
    # the table: one row per configuration, values as mean ± s.e.
    assert main(args[:-6] + ["--out", str(tmp_path / "runs2"), "--seeds", "1", "--configs", "TTUR"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("config") and table[0].endswith("| seeds")
    assert table[2].startswith("TTUR, 0.01 min") and "±" in table[2] and table[2].endswith("| 1")
    assert main(["bench", "fashion", "--configs", "nope"]) == 2
    assert "unknown configuration 'nope'" in capsys.readouterr().err


def test_bench_fashion_lists_configurations_and_checks_options(capsys):
    assert main(["bench", "fashion", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(FASHION_CONFIGS) and lines[0] == f"{'DCGAN':<16} {{}}"
    assert main(["bench", "fashion", "--num", "5"]) == 2
    assert "--num must be at least 10, got 5" in capsys.readouterr().err
    assert main(["bench", "fashion", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_bench_fashion_scores_each_budget_from_one_run_per_seed(tmp_path, idx_dir, monkeypatch, capsys):
    """--minutes 0.05,0.1: one run per configuration and seed trains for the longer budget and is scored at both
    (the shorter from the checkpoint it kept when 0.05 minutes had passed). The budget counts a fake CPU clock
    that advances one second per step, so the test does not depend on the machine's speed."""
    from gankit.training import loop

    ticks = iter(range(10**6))
    monkeypatch.setitem(loop.CLOCKS, "cpu", lambda: float(next(ticks)))
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    args = ["bench", "fashion", "--configs", "DCGAN", "--seeds", "1", "--minutes", "0.1,0.05", "--num", "32",
            "--data-dir", str(idx_dir), "--out", str(tmp_path / "runs"), "--jobs", "1", "--json",
            "--set", "train.clock=cpu", "--set", "model.g_width=8", "--set", "model.d_width=8",
            "--set", "train.batch_size=16"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["setting"], r["minutes"]) for r in rows] == [("DCGAN, 0.05 min", 0.05), ("DCGAN, 0.1 min", 0.1)]
    # each budget's row is logged once (the final one was logged twice and the snapshot's never)
    assert [line.split(" seed")[0] for line in err.splitlines() if " seed 0: " in line] == [
        "DCGAN, 0.1 min", "DCGAN, 0.05 min"]
    assert [r["steps"] for r in rows] == [3, 6]  # the snapshot is the state of the same run after 3 "seconds"
    assert rows[0]["fid"] != rows[1]["fid"]
    assert (tmp_path / "runs" / "DCGAN-0" / "checkpoints" / "minute-0.05.pt").is_file()
    latest = json.loads((tmp_path / "runs" / "DCGAN-0" / "metrics.json").read_text())["latest"]
    assert latest["step"] == 6  # the run's end is its latest score, not the snapshot scored after it
    assert main(args[:6] + ["--minutes", "0,2"]) == 2
    assert "--minutes takes positive numbers" in capsys.readouterr().err


def test_bench_fashion_limit_trains_on_a_small_set_and_judges_against_the_test_split(tmp_path, idx_dir, monkeypatch,
                                                                                     capsys):
    """--limit 16: each run trains on 16 images and is scored against the test split (here 128 images, so 32
    samples are compared with 32 test images, not with the 16 it trained on), with D's held-out accuracy and
    whether the overfitting warning fired; the table shows both."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    args = ["bench", "fashion", "--configs", "DCGAN,ADA", "--seeds", "1", "--minutes", "0.01", "--num", "32",
            "--limit", "16", "--data-dir", str(idx_dir), "--jobs", "1", "--set", "model.g_width=8",
            "--set", "model.d_width=8", "--set", "train.batch_size=8", "--set", "train.sample_every_images=8"]
    assert main(args + ["--json", "--out", str(tmp_path / "runs")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["config"] for r in rows] == ["DCGAN", "ADA"] and all(r["limit"] == 16 for r in rows)
    assert all(0 <= r["d_acc_heldout"] <= 1 and r["overfit_warned"] in (0.0, 1.0) for r in rows)
    scored = json.loads((tmp_path / "runs" / "ADA-0" / "metrics.json").read_text())["latest"]["real"]
    assert scored == {"source": "fashion-mnist", "kind": "dataset", "split": "test", "n": 32}
    cfg = (tmp_path / "runs" / "ADA-0" / "config.yaml").read_text()
    assert "limit: 16" in cfg and "ada_target: 0.6" in cfg
    assert main(args + ["--out", str(tmp_path / "runs2")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "D held-out acc" in table[0] and "warned" in table[0]
    assert main(args[:-8] + ["--limit", "1"]) == 2
    assert "--limit is a number of training images" in capsys.readouterr().err


def test_the_overfitting_columns_read_the_runs_log_and_its_warning(tmp_path):
    """Regression: the bench looked for a warning kind 'overfit' while the run writes 'overfitting', so every
    run of the small-data table read 'not warned'."""
    from gankit.bench.fashion import overfitting_seen
    from gankit.observe.diagnostics import OVERFITTING

    (tmp_path / "log.jsonl").write_text('{"step": 1}\n{"step": 2, "d_acc_heldout": 0.25}\n{"step": 3}\n')
    assert overfitting_seen(tmp_path) == {"d_acc_heldout": 0.25, "overfit_warned": 0.0}
    (tmp_path / "diagnostics.jsonl").write_text(json.dumps({"step": 2, "kind": OVERFITTING, "message": "m"}) + "\n")
    assert OVERFITTING == "overfitting" and overfitting_seen(tmp_path)["overfit_warned"] == 1.0


def test_bench_fashion_refuses_data_overrides_that_would_undo_its_options(capsys):
    """--set data.limit beside --limit printed "limit": 16 while the runs trained on 64 images; --set data.holdout
    made them judged on a holdout share instead of the test split: both are refused before anything trains."""
    for key in ("data.limit=64", "data.holdout=0.2", "data.dataset=mnist"):
        assert main(["bench", "fashion", "--limit", "16", "--set", key]) == 2
        assert f"--set {key.split('=')[0]} would override" in capsys.readouterr().err
    # the budgets: --set train.minutes trained 0.04 minutes in a row labelled 0.02, snapshot_minutes and max_steps
    # dropped rows without a word
    for key in ("train.minutes=0.04", "train.snapshot_minutes=[0.005]", "train.max_steps=5", "train.epochs=1"):
        assert main(["bench", "fashion", "--minutes", "0.01,0.02", "--set", key]) == 2
        assert f"--set {key.split('=')[0]} would change the budgets" in capsys.readouterr().err


def test_bench_json_writes_null_for_a_value_never_measured():
    """JSON has no NaN (JSON.parse rejects it): D's held-out accuracy of a run too short to measure it is null."""
    import math

    from gankit.bench.sweep import format_rows

    line = format_rows([{"config": "ADA", "d_acc_heldout": math.nan, "at": [math.nan, 1.0]}], True, str)
    assert json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) == {
        "config": "ADA", "d_acc_heldout": None, "at": [None, 1.0]}


def test_bench_fashion_on_a_stacked_dataset_scores_modes_of_a_thousand(tmp_path, idx_dir, monkeypatch, capsys):
    """--dataset stacked-fashion-mnist: the runs train on the stacked set and each is scored by the modes its
    samples cover of 1,000 and their reverse KL, channels classified by the source's judge."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # the judge's test split
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    args = ["bench", "fashion", "--dataset", "stacked-fashion-mnist", "--configs", "DCGAN", "--seeds", "1",
            "--minutes", "0.01", "--num", "300", "--data-dir", str(idx_dir), "--out", str(tmp_path / "runs"),
            "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "train.batch_size=32", "--jobs", "1"]
    assert main(args + ["--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["dataset"] == "stacked-fashion-mnist" and "fid" not in row
    assert 1 <= row["modes"] <= 300 and row["reverse_kl"] >= math.log(1000 / 300) - 1e-6  # 300 samples: ≥ 700 missing
    run = tmp_path / "runs" / "DCGAN-0"
    latest = json.loads((run / "metrics.json").read_text())["latest"]
    assert latest["fake"]["n"] == 300 and latest["step"] == row["steps"]
    assert main(args[:2] + ["--dataset", "stacked-mnist", "--limit", "100"]) == 2
    assert "--limit is for fashion-mnist and mnist" in capsys.readouterr().err
