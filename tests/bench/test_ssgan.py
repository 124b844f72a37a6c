import json

from gankit.bench import ssgan
from gankit.bench.ssgan import LONG_FACTOR, METHODS, format_ssgan_table
from gankit.cli import main

from ..conftest import add_test_split

TINY = ["--set", "model.d_hidden=[16]", "--set", "model.g_hidden=[16]", "--set", "model.latent_dim=8",
        "--set", "train.batch_size=20"]


def test_bench_ssgan_compares_with_the_supervised_baseline(tmp_path, idx_dir, capsys):
    add_test_split(idx_dir)
    args = ["bench", "ssgan", "--labels", "2", "--seeds", "2", "--minutes", "0.01", "--data-dir", str(idx_dir),
            "--out", str(tmp_path / "runs"), "--methods", "gan,sup", "--jobs", "1", *TINY]
    assert main(args + ["--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["seed"]) for r in rows] == [("K+1 GAN", 0), ("K+1 GAN", 1), ("supervised, same time", 0),
                                                        ("supervised, same time", 1)]
    assert list(rows[0]) == ["method", "labels_per_class", "seed", "steps", "seconds", "test_accuracy",
                             "test_errors", "test_size", "minutes", "test_accuracy_ema", "test_errors_ema"]
    assert all(r["test_size"] == 128 and 0 <= r["test_errors"] <= 128 and 0 <= r["test_errors_ema"] <= 128
               for r in rows)
    assert all(r["test_errors"] == round((1 - r["test_accuracy"]) * 128) for r in rows)
    assert (tmp_path / "runs" / "2-sup-1").is_dir()
    table = format_ssgan_table(rows).splitlines()
    assert "2: errors" in table[0] and "EMA errors" in table[0] and table[0].endswith("| seeds")
    assert table[2].startswith("K+1 GAN ") and table[3].startswith("supervised, same time")
    assert main(args[:2] + ["--labels", "x"]) == 2
    assert "--labels takes whole numbers" in capsys.readouterr().err
    assert main(args[:2] + ["--labels", "0"]) == 2
    assert main(args[:2] + ["--methods", "gan,magic"]) == 2
    assert "unknown method 'magic'; available: gan, badgan, consistency, sup, sup-long" in capsys.readouterr().err


def test_every_switch_and_the_long_baseline_are_planned(monkeypatch):
    seen = {}
    monkeypatch.setattr(ssgan.sw, "run_sweep", lambda preset, table, *a, **k: seen.update(table=table, preset=preset))
    ssgan.bench_ssgan([10, 100], 1, 2.0)
    table = seen["table"]
    assert seen["preset"] == "ssgan-mlp" and list(table) == [f"{n}-{t}" for n in (10, 100) for t in METHODS]
    minutes = {name: over[-1]["train"]["minutes"] for name, over in table.items()}
    assert minutes["10-gan"] == 2.0 and minutes["100-sup-long"] == 2.0 * LONG_FACTOR
    conds = {name: {k: v for o in over for k, v in o.get("cond", {}).items()} for name, over in table.items()}
    assert conds["10-badgan"] == {"pull_away": 0.8, "low_density": 1.0, "labels_per_class": 10}
    assert conds["100-consistency"]["consistency"] > 0 and conds["10-sup-long"]["supervised_only"] is True


def test_ssgan_table_is_mean_and_standard_error():
    rows = [{"method": m, "labels_per_class": 10, "seed": s, "test_errors": e, "test_errors_ema": e - 2,
             "minutes": 2.0} for m, es in (("K+1 GAN", (10, 20)), ("supervised, same time", (30, 30)))
            for s, e in enumerate(es)]
    lines = format_ssgan_table(rows).splitlines()
    assert "15 ± 5 " in lines[2] and "13 ± 5 " in lines[2] and "2.0" in lines[2]  # s.e. 5, not s.d. 7.07
    assert "30 ± 0 " in lines[3] and lines[3].endswith("| 2")
