"""`gankit tune`: hyper-parameter search on Optuna, each trial an ordinary gankit run scored by the judge.

    gankit.tune.tune("toy", "space.yaml", trials=8, minutes=0.5, dataset="ring", jobs=2)

TUNE_DIR (default runs/tune-PRESET-DATASET) holds study.db (the default storage), trial-NNNN/ (one run per
trial), and at the end trials.csv, best.yaml, the plots and summary.html. Running the same command again
continues the study until it has N finished trials (completed or pruned) in all; a larger N runs more.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from ..bench import sweep as sw
from ..config import build_config, parse_override
from ..errors import GankitError
from ..observe.trackers import check_trackers, require
from .space import describe, load_space
from .study import HEARTBEAT_S, StudySpec, counts, load_study, run_workers, shown_url
from .summary import summarize
from .trial import JUDGES, TrialSpec, default_metric

__all__ = ["tune", "from_args", "JUDGES"]


def _check_metric(cfg, metric: Optional[str]) -> str:
    metric = metric or default_metric(cfg)
    why = JUDGES.get(metric).applies(cfg)
    if why:
        raise GankitError(f"--metric {metric} does not fit {cfg.preset} on {cfg.data.dataset}: {why}")
    return metric


def _head(dataset: Optional[str], minutes: float, jobs: int) -> list[dict]:
    """The first overrides of every trial: dataset, the time budget, cores // jobs threads."""
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise GankitError(f"--minutes must be positive (training minutes per trial), got {minutes}")
    over = [{"data": {"dataset": dataset}}] if dataset else []
    return over + [sw.budget(minutes), {"train": {"threads": max(1, sw.default_jobs() // jobs)}}]


def _evaluation(cfg, metric: str) -> dict:
    """What the runs must evaluate for the pruner: the judge's metric at --eval-every (1 epoch by default)."""
    judge = JUDGES.get(metric)
    train = {"eval_metric": judge.eval_metric} if judge.eval_metric else {}
    if judge.evaluates and cfg.train.eval_every is None:
        train["eval_every"] = 1
    return {"train": train}


def _fresh_folder(out: Path, study) -> None:
    if not study.get_trials(deepcopy=False) and any(out.glob("trial-*")):
        raise GankitError(f"'{out}' holds trial folders of another study; give a new --out (or the --study and "
                          "--storage those trials belong to)")


def tune(preset: str, space: str | Path, trials: int, minutes: float, *, dataset: Optional[str] = None,
         metric: Optional[str] = None, jobs: int = 1, storage: Optional[str] = None, study: Optional[str] = None,
         out: Optional[str | Path] = None, extra: Sequence[dict] = (), heartbeat: int = HEARTBEAT_S,
         log=print) -> dict:
    """Run (or continue) a study of `trials` finished trials of `minutes` each; write its summary. Returns
    {"folder", "best" (value, params, trial, config: best.yaml) or None, "finished", "table", "metric"}.
    heartbeat: seconds between a running trial's heartbeats (a trial silent for 3 of them is retried)."""
    require("optuna", "tune")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise GankitError(f"--trials must be a whole number >= 1, got {trials!r}")
    sw.check_jobs(jobs)
    clash = [f"train.{k}" for o in extra for k in ("minutes", "out") if k in (o.get("train") or {})]
    if clash:  # --set goes last: it would replace --minutes (or be replaced by each trial's folder) unsaid
        raise GankitError(f"--set {clash[0]} is chosen by gankit tune itself; use --{clash[0].split('.')[1]} instead")
    head = _head(dataset, minutes, jobs)
    cfg = build_config(preset, overrides=[*head, *extra])
    metric = _check_metric(cfg, metric)
    check_trackers(cfg)
    base = (*head, _evaluation(cfg, metric), *extra)  # --set last: it overrides what tune sets
    params = load_space(space, build_config(preset, overrides=list(base)))
    folder = Path(out or Path("runs") / f"tune-{cfg.preset}-{Path(cfg.data.dataset).name}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    name = study or folder.name
    url = storage or f"sqlite:///{folder / 'study.db'}"
    attrs = {"preset": cfg.preset, "dataset": cfg.data.dataset, "metric": metric, "minutes": minutes,
             "space": describe(params), "set": list(extra)}
    study_spec = StudySpec(name, url, attrs, heartbeat)
    spec = TrialSpec(cfg.preset, base, params, metric, trials, str(folder))
    the_study = load_study(study_spec, trials, create=True)
    _fresh_folder(folder, the_study)
    done, _ = counts(the_study)
    log(f"study '{name}' in {shown_url(url)}: {done} of {trials} trials finished; trials run in {folder}")
    settings = {"study": name, **attrs, "storage": shown_url(url)}
    try:
        run_workers(study_spec, spec, jobs, log)
    except KeyboardInterrupt:
        log(f"interrupted: the study keeps its trials; run the same command again to continue ({folder})")
        summarize(the_study, spec, settings)
        raise
    except GankitError:  # trials failing: their reasons are in trials.csv
        summarize(the_study, spec, settings)
        raise
    table, best_yaml = summarize(the_study, spec, settings)
    best = None
    if best_yaml is not None:
        b = the_study.best_trial
        best = {"trial": b.number, "value": b.value, "params": b.params, "config": str(best_yaml)}
    return {"folder": str(folder), "best": best, "finished": counts(the_study)[0], "table": table, "metric": metric}


def from_args(args, log=sw.stderr) -> dict:
    """`gankit tune`: the options, checked, to tune()."""
    return tune(args.preset, args.space, args.trials, args.minutes, dataset=args.dataset, metric=args.metric,
                jobs=args.jobs, storage=args.storage, study=args.study, out=args.out,
                extra=[parse_override(s) for s in args.set], log=log)


def print_result(result: dict) -> None:
    print(result["table"])
    folder = result["folder"]
    if result["best"] is None:
        print(f"no trial completed; see {folder}/trials.csv", file=sys.stderr)
        return
    b = result["best"]
    print(f"best: trial {b['trial']}, {result['metric']} {b['value']:.6g}, {b['params']}")
    print(f"tune folder: {folder}\n  best config: {b['config']} (gankit train --config {b['config']})\n"
          f"  trials: {folder}/trials.csv   summary: {folder}/summary.html")
