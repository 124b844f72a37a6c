import json

from gankit.bench.toy2d import TOY_CONFIGS, format_toy_table
from gankit.cli import main


def test_bench_toy2d_runs_and_tabulates(tmp_path, capsys):
    code = main(["bench", "toy2d", "--configs", "GAN,PacGAN2", "--datasets", "ring", "--seeds", "2",
                 "--out", str(tmp_path), "--json", "--set", "data.toy_size=512", "--set", "train.epochs=1",
                 "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"])
    assert code == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [(r["config"], r["seed"]) for r in rows] == [("GAN", 0), ("GAN", 1), ("PacGAN2", 0), ("PacGAN2", 1)]
    assert all(0 <= r["modes"] <= 8 and r["total_modes"] == 8 and r["dataset"] == "ring" for r in rows)
    assert {"seconds", "high_quality", "reverse_kl"} <= set(rows[0])
    assert (tmp_path / "ring-PacGAN2-1").is_dir()
    assert "ring GAN seed 0: " in out.err and "modes" in out.err  # progress goes to stderr
    table = format_toy_table(rows).splitlines()
    assert table[0].startswith("config") and "ring: modes" in table[0] and "s/run" in table[0]
    assert table[2].startswith("GAN") and table[3].startswith("PacGAN2") and "±" in table[2]
    assert main(["bench", "toy2d", "--configs", "WGAN9"]) == 2
    assert "unknown toy configuration 'WGAN9'" in capsys.readouterr().err


def test_bench_toy2d_lists_configurations_and_checks_datasets(capsys):
    assert main(["bench", "toy2d", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(TOY_CONFIGS) and lines[1] == f"{'PacGAN2':<17} {json.dumps({'tech': {'pack': 2}})}"
    assert main(["bench", "toy2d", "--datasets", "ring,moon"]) == 2
    assert "--datasets takes ring and/or grid" in capsys.readouterr().err
