import json

from gankit.bench.toy2d import TOY_CONFIGS, format_toy_table
from gankit.cli import main


def test_bench_toy2d_runs_and_tabulates(tmp_path, capsys):
    code = main(["bench", "toy2d", "--configs", "GAN,PacGAN2", "--datasets", "ring", "--seeds", "2",
                 "--out", str(tmp_path), "--json", "--jobs", "1", "--set", "data.toy_size=512", "--set", "train.epochs=1",
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


def test_bench_toy2d_in_parallel_processes_gives_the_same_table(tmp_path, capsys):
    """--jobs 2 runs the same runs in two worker processes: the same rows (but seconds) in the same order."""
    args = ["bench", "toy2d", "--configs", "GAN,R1", "--datasets", "ring,grid", "--seeds", "2", "--json",
            "--set", "data.toy_size=2048", "--set", "train.epochs=1", "--set", "train.threads=1",
            "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"]
    tables = []
    for jobs in ("1", "2"):
        assert main(args + ["--jobs", jobs, "--out", str(tmp_path / jobs)]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        tables.append([{k: v for k, v in r.items() if k != "seconds"} for r in rows])
    assert len(tables[0]) == 8 and tables[0] == tables[1]
    assert [(r["dataset"], r["config"], r["seed"]) for r in tables[1]][:3] == [("ring", "GAN", 0), ("ring", "GAN", 1),
                                                                              ("ring", "R1", 0)]
    assert main(args + ["--jobs", "0"]) == 2
    assert "--jobs must be a whole number >= 1" in capsys.readouterr().err
    # --first-seed 1: seed 1 alone, the same run as the sweep's seed 1, in a folder named by its seed
    more = list(args)
    more[more.index("--datasets") + 1] = "ring"
    more[more.index("--seeds") + 1] = "1"
    assert main(more + ["--first-seed", "1", "--jobs", "1", "--out", str(tmp_path / "more")]) == 0
    rows = [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in capsys.readouterr().out.splitlines()]
    assert rows == [r for r in tables[0] if r["dataset"] == "ring" and r["seed"] == 1]
    assert (tmp_path / "more" / "ring-GAN-1").is_dir() and not (tmp_path / "more" / "ring-GAN-0").exists()
    assert main(more + ["--first-seed", "-1"]) == 2
    assert "--first-seed at least 0" in capsys.readouterr().err


def test_bench_toy2d_refine_adds_a_refined_row_per_method_beside_the_raw_one(tmp_path, capsys):
    """--refine drs,mh: each run is scored raw (the same numbers as without --refine) and on samples refined by
    its D, as rows 'GAN + drs' and 'GAN + mh' with the G forwards each kept sample cost; packed D's are refused."""
    args = ["bench", "toy2d", "--configs", "GAN", "--datasets", "ring", "--seeds", "2", "--json", "--jobs", "1",
            "--set", "data.toy_size=512", "--set", "train.epochs=1", "--set", "model.g_hidden=[16]",
            "--set", "model.d_hidden=[16]", "--set", "sample.drs_burn_in=256", "--set", "sample.mh_calibration=256"]
    assert main(args + ["--out", str(tmp_path / "plain")]) == 0
    plain = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(args + ["--out", str(tmp_path / "refined"), "--refine", "drs,mh"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["config"], r["seed"]) for r in rows] == [("GAN", 0), ("GAN", 1), ("GAN + drs", 0), ("GAN + drs", 1),
                                                        ("GAN + mh", 0), ("GAN + mh", 1)]
    drop = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert [drop(r) for r in rows[:2]] == [drop(r) for r in plain]
    assert all(r["g_per_sample"] >= 1 and 0 <= r["high_quality"] <= 100 for r in rows[2:])
    assert rows[2]["high_quality"] != rows[0]["high_quality"]
    assert format_toy_table(rows).splitlines()[3].startswith("GAN + drs")
    assert main(["bench", "toy2d", "--configs", "GAN,PacGAN2", "--refine", "mh"]) == 2
    assert "PacGAN2 judges packs" in capsys.readouterr().err
    assert main(["bench", "toy2d", "--configs", "GAN", "--refine", "best"]) == 2
    assert "unknown refinement 'best'" in capsys.readouterr().err


def test_bench_toy2d_refine_checks_everything_before_training(capsys, monkeypatch):
    """--set tech.pack=2 with --refine failed only after the first run had trained; --refine without --configs
    refused the default list (which has PacGAN); 'drs, mh' with a space was an unknown ' mh'."""
    import argparse

    from gankit.bench import toy2d

    assert main(["bench", "toy2d", "--configs", "GAN", "--refine", "mh", "--set", "tech.pack=2"]) == 2
    assert "--set tech.pack makes every D judge packs" in capsys.readouterr().err
    assert toy2d.check_refine("drs, mh", ["GAN"]) == ["drs", "mh"]
    seen = {}
    monkeypatch.setattr(toy2d, "bench_toy2d", lambda configs, *a, **k: seen.update(configs=configs) or [])
    toy2d.from_args(argparse.Namespace(configs=None, datasets="ring", seeds=1, first_seed=0, set=[], out=None, jobs=1,
                                        refine="drs"))
    assert "GAN" in seen["configs"] and not any(c.startswith("PacGAN") for c in seen["configs"])
