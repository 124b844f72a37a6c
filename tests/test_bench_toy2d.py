import json

from gankit.bench_toy2d import _mean_se, format_toy_table
from gankit.cli import main


def test_mean_and_standard_error():
    assert _mean_se([1.0, 3.0]) == (2.0, 1.0)  # s.d. sqrt(2), s.e. sqrt(2)/sqrt(2)
    assert _mean_se([5.0]) == (5.0, 0.0)


def test_bench_toy2d_runs_and_tabulates(tmp_path, capsys):
    code = main(["bench", "toy2d", "--configs", "GAN,PacGAN2", "--datasets", "ring", "--seeds", "2",
                 "--out", str(tmp_path), "--json", "--set", "data.toy_size=512", "--set", "train.epochs=1",
                 "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["config"], r["seed"]) for r in rows] == [("GAN", 0), ("GAN", 1), ("PacGAN2", 0), ("PacGAN2", 1)]
    assert all(0 <= r["modes"] <= 8 and r["total_modes"] == 8 for r in rows)
    table = format_toy_table(rows).splitlines()
    assert table[0].startswith("config") and table[2].startswith("GAN") and table[3].startswith("PacGAN2")
    assert main(["bench", "toy2d", "--configs", "WGAN9"]) == 2
