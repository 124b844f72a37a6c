"""One trial of `gankit tune`: an ordinary gankit run in TUNE_DIR/trial-NNNN, its --eval-every values reported to
Optuna's pruner while it trains (the run stops cleanly at that epoch's end when pruned), then scored by the
project's judge: FID, KID or precision (gankit.metrics), the modes of ring and grid, or the test accuracy of a
semi-supervised run's classifier. The score is kept in the study (trials.csv), not in the run's metrics.json:
recording it there would redraw the run's plots once more per trial."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..config import build_config
from ..errors import GankitError
from ..observe.trackers import Tracker, attached
from ..registry import Registry
from ..training.watch import DIVERGED
from .space import Param, suggest

PRUNED = "pruned"  # the stop reason the pruner gives the run
SCORE_IMAGES = 5000  # generated images scored per trial by fid, kid and precision (2,500 points on ring/grid)
CLASSIFYING_MODES = ("ssgan", "acgan")  # cond.mode values whose D is a classifier (the accuracy judge)


class TrialFailed(Exception):
    """A trial that ended without a score (diverged, or a config the run refused): marked failed, not retried."""


class Surplus(Exception):
    """A trial asked for after other workers had already taken the last of the N: marked failed and hidden."""


# ---------------------------------------------------------------- the judges
@dataclass(frozen=True)
class Judge:
    """How a trial is scored: the study's direction, the in-training values the pruner follows, the final score."""
    direction: str  # minimize or maximize
    score: Callable[[Path, object], dict]  # (run folder, config) -> values, the objective under "value"
    applies: Callable[[object], Optional[str]]  # config -> why this judge cannot score it (None: it can)
    follows: Optional[str] = None  # the key of the run's metrics.json values the pruner reads (None: no pruning)
    intermediate: Callable[[dict], float] = field(default=lambda v: v)  # those values -> the reported number
    evaluates: bool = False  # those values come from --eval-every (else from every epoch's own metrics)
    eval_metric: Optional[str] = None  # train.eval_metric the runs follow during training


JUDGES: Registry[Judge] = Registry("tune metric")


def _images(cfg) -> Optional[str]:
    if cfg.is_toy or cfg.is_translation:
        return "it scores generated images; use --metric modes for ring and grid (image-to-image runs are not tuned)"
    return None


def _points(cfg) -> Optional[str]:
    return None if cfg.is_toy else "it counts the modes of ring and grid; use --metric fid, kid or precision"


def _classifier(cfg) -> Optional[str]:
    return None if cfg.cond.mode in CLASSIFYING_MODES else "it scores a semi-supervised run's classifier; use --preset ssgan"


def _gankit_eval(metric: str, key: str) -> Callable[[Path, object], dict]:
    def score(run: Path, cfg) -> dict:
        from ..metrics.api import evaluate

        values = evaluate(run, metrics=metric, num=SCORE_IMAGES, device=cfg.train.device, record=False,
                          refine="none")["metrics"]  # the trained G, as the pruner's --eval-every values
        return {**values, "value": float(values[key])}
    return score


def _modes(run: Path, cfg) -> dict:
    from ..metrics.api import evaluate
    from ..metrics.catalog import METRICS

    values = evaluate(run, metrics="modes", device=cfg.train.device, record=False, refine="none")["metrics"]
    return {**values, "value": METRICS.get("modes").score(values)}


def _accuracy(run: Path, cfg) -> dict:
    from ..bench.ssgan import score_ssgan

    values = score_ssgan(run, cfg, cfg.train.seed)
    return {**values, "value": float(values["test_accuracy"])}


def _modes_rank(values: dict) -> float:
    from ..metrics.catalog import METRICS

    return METRICS.get("modes").score(values)


for _name in ("fid", "kid"):
    JUDGES.register(_name)(Judge("minimize", _gankit_eval(_name, _name), _images, _name,
                                 lambda v, k=_name: v[k], evaluates=True, eval_metric=_name))
JUDGES.register("precision")(Judge("maximize", _gankit_eval("pr", "precision"), _images))  # not followed: not pruned
JUDGES.register("modes")(Judge("maximize", _modes, _points, "modes", _modes_rank, evaluates=True))
JUDGES.register("accuracy")(Judge("maximize", _accuracy, _classifier, "test_accuracy", lambda v: v["test_accuracy"]))


def default_metric(cfg) -> str:
    """modes for ring and grid, accuracy for a classifying run, else fid."""
    return "modes" if cfg.is_toy else "accuracy" if cfg.cond.mode in CLASSIFYING_MODES else "fid"


# ---------------------------------------------------------------- a trial
@dataclass(frozen=True)
class TrialSpec:
    """What every trial of a study shares (picklable: worker processes receive it)."""
    preset: str
    base: tuple  # config overrides of every trial: dataset, budget, evaluation, threads, --set
    space: tuple[Param, ...]
    metric: str
    trials: int  # N: trials to finish (completed or pruned) in the whole study
    out: str  # the tune folder


class PruneReporter(Tracker):
    """A tracker attached to the trial's run: each evaluation's value goes to trial.report(value, k) (k = 1, 2,
    ...); when Optuna's pruner says so, it asks the run to stop."""

    def __init__(self, trial, judge: Judge):
        self.trial, self.judge, self.reports = trial, judge, 0

    def log_metrics(self, step: int, values: dict) -> None:
        if self.judge.follows is None or self.judge.follows not in values:
            return
        self.reports += 1
        self.trial.report(float(self.judge.intermediate(values)), self.reports)
        if self.trial.should_prune():
            self.stop_reason = PRUNED


def _check_surplus(trial, spec: TrialSpec) -> None:
    """Another worker may have asked for the last of the N trials a moment before this one."""
    from optuna.trial import TrialState

    live = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
    if sum(t.number < trial.number for t in live) >= spec.trials:
        trial.set_user_attr("surplus", True)
        if trial.user_attrs.get("retry_of") is not None:  # hand the retry back to the queue
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.user_attrs["retry_of"]})
        raise Surplus(f"trial {trial.number}: the study already has its {spec.trials} trials")


def _retry(trial) -> None:
    """An interrupted trial (Ctrl-C) is queued again with the same values: the next run of the command does it."""
    trial.set_user_attr("interrupted", True)
    trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _diverged(trial, summary: dict) -> None:
    raise TrialFailed(f"diverged at step {summary['steps']}")


def _interrupted(trial, summary: dict) -> None:
    raise KeyboardInterrupt


STOPS = {DIVERGED: _diverged, "interrupt": _interrupted}  # a run's stop reason -> what the trial does


def run_trial(trial, spec: TrialSpec) -> float:
    """Optuna's objective: train the trial's config, report and maybe prune, score. Ctrl-C queues it again."""
    import optuna

    from ..training import train

    _check_surplus(trial, spec)
    judge = JUDGES.get(spec.metric)
    out = Path(spec.out) / f"trial-{trial.number:04d}"
    trial.set_user_attr("run", str(out))
    trial.set_user_attr("host", socket.gethostname())
    try:
        cfg = build_config(spec.preset, overrides=[*spec.base, suggest(spec.space, trial), {"train": {"out": str(out)}}])
        reporter = PruneReporter(trial, judge)
        with attached(reporter):
            summary = train(cfg, quiet=True)
        for key in ("steps", "seconds", "stopped_by"):
            trial.set_user_attr(key, summary[key])
        STOPS.get(summary["stopped_by"], lambda *_: None)(trial, summary)
        if reporter.stop_reason:
            raise optuna.TrialPruned(f"pruned after evaluation {reporter.reports}")
        values = judge.score(out, cfg)
    except KeyboardInterrupt:
        _retry(trial)
        raise
    except (GankitError, TrialFailed) as e:
        trial.set_user_attr("error", str(e))
        raise
    value = values.pop("value")
    for key, v in values.items():
        if isinstance(v, (int, float)):
            trial.set_user_attr(key, v)
    return value
