"""What every training benchmark does: named configurations x seeds -> build config -> train -> score -> rows,
and one table of mean ± spread over seeds per configuration (and per dataset or label count).

A run is a pure function of its `Run` (preset, configuration name, overrides, seed, folder) and a
module-level score function, so a list of runs can later be mapped over worker processes as it is.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import build_config
from ..errors import GankitError

# score(out, cfg, seed) -> the run's metrics (module-level, or a functools.partial of one, so it pickles)
Score = Callable[[Path, object, int], dict]


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: everything it needs, nothing shared with the other runs."""
    preset: str
    name: str                   # configuration name; the folder is OUT/NAME-SEED
    overrides: tuple            # config overrides, seed and folder included, applied in order
    seed: int
    out: Path
    columns: dict = field(default_factory=dict)  # the row's identifying columns, e.g. config and dataset


PRESET_KEY = "preset"  # in a configuration's overrides: train from this preset instead of the bench's


def refuse_set(extra: Sequence[dict], section: str, keys: Sequence[str], why: str) -> None:
    """One line for a --set SECTION.KEY that would silently undo what the bench sets itself."""
    hit = [f"{section}.{k}" for o in extra for k in keys if k in o.get(section, {})]
    if hit:
        raise GankitError(f"--set {hit[0]} {why}")


def plan(preset: str, configs: Mapping[str, Sequence[dict]], seeds: int | Sequence[int], root: Path,
         extra: Sequence[dict] = (), columns: Mapping[str, dict] | None = None) -> list[Run]:
    """Every (configuration, seed) in order: configurations outer, seeds inner (`seeds`: a count N for seeds
    0..N-1, or the seeds themselves). `extra` (e.g. --set)
    goes last, so it overrides the configurations. An override {"preset": P} makes that configuration start
    from preset P."""
    refuse_set(extra, "train", ("seed", "out"), "would override what the bench gives each run (its seed and "
               "folder); use --seeds and --out")
    runs = []
    for name, overrides in configs.items():
        base = next((o[PRESET_KEY] for o in overrides if PRESET_KEY in o), preset)
        overrides = [{k: v for k, v in o.items() if k != PRESET_KEY} for o in overrides]
        for seed in (range(seeds) if isinstance(seeds, int) else seeds):
            out = root / f"{name}-{seed}"
            over = (*overrides, {"train": {"seed": seed, "out": str(out)}}, *extra)
            runs.append(Run(base, name, over, seed, out, dict((columns or {}).get(name, {"config": name}))))
    return runs


def run_one(run: Run, score: Score) -> dict:
    """Train one run, then score it: a row of its columns, seed, steps, seconds and the score's metrics."""
    from ..training import train

    cfg = build_config(run.preset, overrides=list(run.overrides))
    t0 = time.time()
    summary = train(cfg, quiet=True)
    seconds = time.time() - t0
    return {**run.columns, "seed": run.seed, "steps": summary["steps"], "seconds": round(seconds, 1),
            **score(run.out, cfg, run.seed)}


def default_jobs() -> int:
    """One worker process per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def check_jobs(jobs: int) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise GankitError(f"--jobs must be a whole number >= 1, got {jobs!r}")
    return jobs


def run_sweep(preset: str, configs: Mapping[str, Sequence[dict]], seeds: int | Sequence[int], score: Score, *,
              extra: Sequence[dict] = (), out: str | None = None, columns: Mapping[str, dict] | None = None,
              prefix: str = "gankit-bench-", describe: Callable[[dict], str] = str, log=print,
              jobs: int = 1) -> list[dict]:
    """Train and score every configuration with seeds 0..seeds-1 (or the given seeds), each run in its own
    folder under `out` (default: a new temporary folder); log `describe(row)` after each run; return the rows in plan order.
    `jobs` > 1 runs that many worker processes at once, each with cores // jobs threads unless the
    overrides set train.threads (a run's result does not depend on which worker ran it)."""
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix=prefix))
    runs = plan(preset, configs, seeds, root, extra, columns)
    if check_jobs(jobs) == 1 or len(runs) == 1:
        rows = []
        for run in runs:
            rows.append(run_one(run, score))
            log(describe(rows[-1]))
        return rows
    return _run_parallel(runs, score, jobs, describe, log)


def _run_parallel(runs: list[Run], score: Score, jobs: int, describe, log) -> list[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = {"train": {"threads": max(1, default_jobs() // jobs)}}
    runs = [Run(r.preset, r.name, (threads, *r.overrides), r.seed, r.out, r.columns) for r in runs]
    rows: list[dict | None] = [None] * len(runs)
    ctx = multiprocessing.get_context("spawn")  # no forked torch thread pools
    # started seed by seed, so runs of different configurations share the machine's load of the same minutes
    order = sorted(range(len(runs)), key=lambda i: runs[i].seed)
    with ProcessPoolExecutor(max_workers=min(jobs, len(runs)), mp_context=ctx) as pool:
        futures = {pool.submit(run_one, runs[i], score): i for i in order}
        try:
            for f in as_completed(futures):
                rows[futures[f]] = f.result()
                log(describe(rows[futures[f]]))
        except BaseException:  # a run failed (or Ctrl-C): the runs not started are not started; those under way
            pool.shutdown(wait=False, cancel_futures=True)  # finish, and their folders keep their results
            raise
    return rows


# ---- checks shared by the benches' command lines

def check_names(names: Sequence[str], table: Mapping[str, object], what: str = "configuration") -> None:
    bad = [n for n in names if n not in table]
    if bad:
        raise GankitError(f"unknown {what} '{bad[0]}'; available: {', '.join(table)}")


def seed_range(args) -> range:
    """--seeds N and --first-seed K of a bench's command line: seeds K..K+N-1, so more seeds can be added to a
    table later without training the first ones again."""
    if args.seeds < 1 or args.first_seed < 0:
        raise GankitError(f"--seeds must be at least 1 and --first-seed at least 0, got {args.seeds} and "
                          f"{args.first_seed}")
    return range(args.first_seed, args.first_seed + args.seeds)


def split_list(text: str | None, default: Sequence[str] = ()) -> list[str]:
    """'a,b,' -> ['a', 'b']; None or '' -> the default."""
    return [x for x in text.split(",") if x] if text else list(default)


def list_configs(table: Mapping[str, dict], width: int) -> str:
    """The lines of `--list`: name, then its overrides as JSON."""
    return "\n".join(f"{name:<{width}} {json.dumps(over)}" for name, over in table.items())


def stderr(message: str) -> None:
    """Progress of a benchmark run from the command line (stdout keeps the table or the JSON rows)."""
    print(message, file=sys.stderr)


def budget(minutes: float) -> dict:
    """Train for `minutes` of wall-clock time, whatever the preset's epochs or step budget."""
    return {"train": {"minutes": minutes, "epochs": None, "max_steps": None}}


# ---- aggregation over seeds and the table

def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample s.d. / sqrt(n); 0 for one value)."""
    mean, sd = mean_sd(values)
    return mean, sd / math.sqrt(len(values))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


SPREADS = {"se": mean_se, "sd": mean_sd}


def aggregate(rows: Sequence[dict], by: Sequence[str], keys: Sequence[str], spread: str = "se",
              scale: Mapping[str, float] | None = None) -> dict[tuple, dict]:
    """Group rows by the values of `by` (in order of appearance); per group: {key: (mean, spread)} for
    each of `keys` (times `scale[key]`, default 1), and "n", the number of rows (seeds)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    stat, scale = SPREADS[spread], scale or {}
    return {g: {"n": len(rs), **{k: stat([scale.get(k, 1) * float(r[k]) for r in rs]) for k in keys}}
            for g, rs in groups.items()}


@dataclass(frozen=True)
class Column:
    """A column of mean ± spread over seeds (or mean alone, `spread=False`) of one row field."""
    title: str
    key: str
    width: int
    digits: int
    spread: bool = True
    mean_width: int | None = None  # mean right- and spread left-aligned around "±"; else the pair right-aligned
    scale: float = 1.0

    def cell(self, mean: float, sd: float) -> str:
        d = self.digits
        if not self.spread:
            return f"{mean:>{self.width}.{d}f}"
        if self.mean_width:
            return f"{mean:>{self.mean_width}.{d}f} ± {sd:<{self.width - self.mean_width - 3}.{d}f}"
        return f"{mean:.{d}f} ± {sd:.{d}f}".rjust(self.width)


@dataclass(frozen=True)
class Table:
    """Rows: the values of `row_key`; per value of `group_key` (if any), a group of columns."""
    row_key: str
    row_title: str
    row_width: int
    columns: tuple
    group_key: str | None = None
    sep: str = " "        # between the columns of a group
    seeds: bool = False   # a last column with the number of seeds
    spread: str = "se"    # "se": standard error, "sd": standard deviation

    def head(self, groups: Sequence) -> str:
        parts = [f"{self.row_title:<{self.row_width}}"]
        for g in groups:
            titles = [(f"{g}: " if i == 0 and self.group_key else "") + c.title for i, c in enumerate(self.columns)]
            parts.append("| " + self.sep.join(f"{t:>{c.width}}" for t, c in zip(titles, self.columns)) + " ")
        return "".join(parts) + ("| seeds" if self.seeds else "")

    def blank(self) -> str:  # a group with no runs
        return " " * (2 + sum(c.width for c in self.columns) + len(self.sep) * (len(self.columns) - 1) + 1)


def format_table(rows: Sequence[dict], table: Table) -> str:
    """One line per value of the row key: each group's columns as mean ± spread over seeds."""
    by = (table.row_key, table.group_key) if table.group_key else (table.row_key,)
    scale = {c.key: c.scale for c in table.columns}
    stats = aggregate(rows, by, list(dict.fromkeys(c.key for c in table.columns)), table.spread, scale)
    groups = list(dict.fromkeys(r[table.group_key] for r in rows)) if table.group_key else [None]
    width = max([table.row_width - 1, *(len(str(r[table.row_key])) for r in rows)]) + 1  # a long name: a wider column
    table = replace(table, row_width=width)
    head = table.head(groups)
    lines = [head, "-" * len(head)]
    for value in dict.fromkeys(r[table.row_key] for r in rows):
        cells, n = [], 0
        for g in groups:
            s = stats.get((value, g) if table.group_key else (value,))
            if s is None:
                cells.append(table.blank())
                continue
            n = max(n, s["n"])
            cells.append("| " + table.sep.join(c.cell(*s[c.key]) for c in table.columns) + " ")
        lines.append(f"{value!s:<{table.row_width}}" + "".join(cells) + (f"| {n}" if table.seeds else ""))
    return "\n".join(lines)


def format_rows(rows: Sequence[dict], as_json: bool, table: Callable[[Sequence[dict]], str]) -> str:
    """One JSON object per line (the raw rows; a value not measured, NaN, is null) with --json, else the
    table a person reads."""
    return "\n".join(json.dumps(_nan_to_null(r)) for r in rows) if as_json else table(rows)


def _nan_to_null(value):
    """JSON has no NaN: strict parsers (JSON.parse, json.loads(parse_constant=...)) reject it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_null(v) for v in value]
    return value
