import json

from gankit.bench.ssgan import format_ssgan_table
from gankit.cli import main


def test_bench_ssgan_compares_with_the_supervised_baseline(tmp_path, idx_dir, capsys):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    args = ["bench", "ssgan", "--labels", "2", "--seeds", "2", "--minutes", "0.01", "--data-dir", str(idx_dir),
            "--out", str(tmp_path / "runs"), "--set", "model.g_width=8", "--set", "model.d_width=8",
            "--set", "train.batch_size=32"]
    assert main(args + ["--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["seed"]) for r in rows] == [("K+1 GAN", 0), ("K+1 GAN", 1), ("supervised only", 0),
                                                        ("supervised only", 1)]
    assert list(rows[0]) == ["method", "labels_per_class", "seed", "steps", "seconds", "test_accuracy",
                             "test_errors", "test_size"]
    assert all(r["test_size"] == 128 and 0 <= r["test_errors"] <= 128 for r in rows)
    assert (tmp_path / "runs" / "2-sup-1").is_dir()
    table = format_ssgan_table(rows).splitlines()
    assert "K+1 GAN: test errors" in table[0] and "supervised only: test errors" in table[0]
    assert table[2].startswith("2 ") and table[2].endswith("| 2")
    assert main(args[:2] + ["--labels", "x"]) == 2
    assert "--labels takes whole numbers" in capsys.readouterr().err
    assert main(args[:2] + ["--labels", "0"]) == 2


def test_ssgan_table_is_mean_and_standard_deviation():
    rows = [{"method": m, "labels_per_class": 10, "seed": s, "test_errors": e, "test_accuracy": 1 - e / 100}
            for m, es in (("K+1 GAN", (10, 20)), ("supervised only", (30, 30))) for s, e in enumerate(es)]
    line = format_ssgan_table(rows).splitlines()[2]
    assert "15 ± 7 " in line and "85.00 ± 7.07" in line and "30 ± 0 " in line  # s.d. 7.07, not s.e. 5
