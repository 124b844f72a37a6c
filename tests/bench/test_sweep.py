"""The sweep shared by the benchmarks: planning runs, aggregating over seeds, the table."""
import inspect
import json
import math
import pickle

import pytest

from gankit.bench.sweep import (
    Column,
    Table,
    aggregate,
    format_rows,
    format_table,
    mean_sd,
    mean_se,
    plan,
    run_sweep,
)
from gankit.errors import GankitError


def test_mean_and_standard_error():
    assert mean_se([1.0, 3.0]) == pytest.approx((2.0, 1.0), abs=1e-12)  # s.d. sqrt(2), s.e. sqrt(2)/sqrt(2)
    assert mean_se([5.0]) == (5.0, 0.0)
    assert mean_sd([1.0, 3.0]) == pytest.approx((2.0, math.sqrt(2)), abs=1e-12)


def _rows():
    """Constructed rows: two configurations x two datasets, uneven seeds (one group has a single run)."""
    values = {("GAN", "ring"): [2.0, 4.0, 9.0], ("GAN", "grid"): [10.0, 12.0],
              ("EMA", "ring"): [1.5], ("EMA", "grid"): [0.0, 1.0, 2.0, 7.0]}
    return [{"config": c, "dataset": d, "seed": s, "modes": v, "steps": 100 + s}
            for (c, d), vs in values.items() for s, v in enumerate(vs)]


def test_aggregate_gives_mean_and_standard_error_per_configuration_and_dataset():
    stats = aggregate(_rows(), by=("config", "dataset"), keys=["modes", "steps"])
    assert list(stats) == [("GAN", "ring"), ("GAN", "grid"), ("EMA", "ring"), ("EMA", "grid")]
    # by hand: GAN/ring mean 5, sample variance ((-3)^2 + (-1)^2 + 4^2)/2 = 13, s.e. sqrt(13/3)
    assert stats["GAN", "ring"]["modes"] == pytest.approx((5.0, math.sqrt(13 / 3)), rel=1e-12, abs=1e-12)
    assert stats["GAN", "grid"]["modes"] == pytest.approx((11.0, 1.0), rel=1e-12, abs=1e-12)  # sqrt(2)/sqrt(2)
    assert stats["EMA", "ring"]["modes"] == pytest.approx((1.5, 0.0), abs=1e-12)  # one seed: no spread
    # mean 2.5, variance (6.25 + 2.25 + 0.25 + 20.25)/3 = 29/3, s.e. sqrt(29/3/4)
    assert stats["EMA", "grid"]["modes"] == pytest.approx((2.5, math.sqrt(29 / 12)), rel=1e-12, abs=1e-12)
    assert [s["n"] for s in stats.values()] == [3, 2, 1, 4]
    assert stats["EMA", "grid"]["steps"] == pytest.approx((101.5, math.sqrt(5 / 3 / 4)), rel=1e-12)
    sd = aggregate(_rows(), by=("config",), keys=["modes"], spread="sd", scale={"modes": 10})
    gan = [20.0, 40.0, 90.0, 100.0, 120.0]  # both datasets, times 10
    m = sum(gan) / 5
    assert sd["GAN",]["modes"] == pytest.approx((m, math.sqrt(sum((v - m) ** 2 for v in gan) / 4)), rel=1e-12)


def test_table_shows_the_aggregates_in_groups():
    table = Table("config", "config", 8, (Column("modes", "modes", 13, 1, mean_width=6),
                                          Column("steps", "steps", 6, 0, spread=False)), group_key="dataset")
    lines = format_table(_rows(), table).splitlines()
    assert lines[0] == "config  |   ring: modes  steps |   grid: modes  steps "
    assert set(lines[1]) == {"-"} and len(lines[1]) == len(lines[0])
    assert lines[2] == f"GAN     |    5.0 ± {math.sqrt(13 / 3):<4.1f}    101 |   11.0 ± 1.0     100 "
    assert lines[3].startswith("EMA     |    1.5 ± 0.0     100 |    2.5 ± 1.6 ")
    flat = Table("config", "config", 6, (Column("modes", "modes", 11, 2),), sep=" | ", seeds=True, spread="sd")
    assert format_table(_rows()[:3], flat).splitlines()[2] == f"GAN   | {f'5.00 ± {math.sqrt(13):.2f}':>11} | 3"
    assert json.loads(format_rows(_rows(), True, None).splitlines()[0])["config"] == "GAN"
    # a name longer than the first column widens it: every row's columns stay under the head's
    long = [{**r, "config": "DCGAN-tuned+cosine+EMA, 10 min"} if r["config"] == "EMA" else r for r in _rows()]
    lines = format_table(long, table).splitlines()
    assert lines[0].startswith("config" + " " * 25 + "|   ring: modes")
    assert {line.index("|") for line in lines if "|" in line} == {31}


def test_plan_gives_each_run_its_folder_and_seed_with_extra_overrides_last(tmp_path):
    configs = {"a": [{"tech": {"pack": 2}}], "b": []}
    runs = plan("toy", configs, 2, tmp_path, extra=[{"train": {"threads": 7}}], columns={"a": {"config": "A"}})
    assert [(r.name, r.seed, r.out.name) for r in runs] == [("a", 0, "a-0"), ("a", 1, "a-1"), ("b", 0, "b-0"),
                                                           ("b", 1, "b-1")]
    assert runs[1].overrides == ({"tech": {"pack": 2}}, {"train": {"seed": 1, "out": str(tmp_path / "a-1")}},
                                 {"train": {"threads": 7}})
    assert runs[0].columns == {"config": "A"} and runs[2].columns == {"config": "b"}
    assert pickle.loads(pickle.dumps(runs[1])) == runs[1]  # can be sent to a worker process
    # --set train.seed made every "seed" the same run (a spread of 0); train.out sent every run to one folder
    for key in ("seed", "out"):
        with pytest.raises(GankitError, match=f"--set train.{key} would override"):
            plan("toy", configs, 2, tmp_path, extra=[{"train": {key: 7}}])


def _score(out, cfg, seed):
    return {"folder": out.name, "dataset": cfg.data.dataset, "score_seed": seed}


def test_sweep_trains_and_scores_each_run(tmp_path):
    tiny = {"data": {"toy_size": 256}, "model": {"g_hidden": [8], "d_hidden": [8]},
            "train": {"epochs": None, "max_steps": 2, "batch_size": 32}}
    logged = []
    rows = run_sweep("toy", {"g": [tiny, {"data": {"dataset": "grid"}}]}, 2, _score, out=str(tmp_path),
                     describe=lambda r: f"{r['config']} {r['seed']}", log=logged.append)
    assert logged == ["g 0", "g 1"]
    assert [list(r) for r in rows] == [["config", "seed", "steps", "seconds", "folder", "dataset", "score_seed"]] * 2
    assert [(r["folder"], r["dataset"], r["score_seed"], r["steps"]) for r in rows] == [
        ("g-0", "grid", 0, 2), ("g-1", "grid", 1, 2)]
    assert (tmp_path / "g-1").is_dir()


def test_the_package_exports_the_sweep_without_hiding_its_modules():
    from gankit import bench

    assert inspect.ismodule(bench.sweep) and inspect.ismodule(bench.toy2d) and callable(bench.run_sweep)
    assert bench.format_toy_table is bench.toy2d.format_toy_table and callable(bench.speed)


def test_a_failed_run_stops_a_parallel_sweep_without_starting_the_rest(tmp_path):
    """Regression: one run failing (here: its folder already holds a run) let the sweep start every other run and
    only then raised; the runs not yet started are now cancelled (those already under way finish)."""
    from gankit.errors import GankitError

    tiny = {"data": {"toy_size": 256}, "model": {"g_hidden": [8], "d_hidden": [8]},
            "train": {"epochs": None, "max_steps": 200, "batch_size": 32, "threads": 1}}
    (tmp_path / "g-0").mkdir()
    (tmp_path / "g-0" / "log.jsonl").write_text("{}\n")
    with pytest.raises(GankitError, match="already holds a run"):
        run_sweep("toy", {"g": [tiny]}, 12, _score, out=str(tmp_path), log=lambda _: None, jobs=2)
    started = sorted(int(p.name[2:]) for p in tmp_path.iterdir())
    assert started[0] == 0 and len(started) < 12 and 11 not in started
