"""The Optuna study of `gankit tune` and the workers that pull its trials.

Storage: an SQLite file in the tune folder by default, or any Optuna storage URL (postgresql://...) shared by
workers on several machines. Every worker loops: while fewer than N trials are finished (completed or pruned)
and fewer than N are finished or running, it runs one more (Optuna's ask: a queued retry first, else the
sampler's next values). Trials keep a heartbeat in the storage: a trial whose worker was killed goes stale,
is marked failed and queued again with the same values (RetryHeartbeatStaleTrialCallback); a trial stopped by
Ctrl-C is marked failed and queued again at once. So N counts finished trials over every run of the command.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..errors import GankitError
from ..observe.trackers import require
from .trial import JUDGES, Surplus, TrialFailed, TrialSpec, run_trial

HEARTBEAT_S = 10  # seconds between a running trial's heartbeats; stale (its worker gone) after 3 missed
POLL_S = 5.0  # a worker waiting for the last running trials looks again after this long
MAX_FAILS = 3  # a worker gives up after this many failed trials in a row (a config every trial refuses)
MAX_RETRIES = 3  # a trial whose worker died is queued again at most this many times


@dataclass(frozen=True)
class StudySpec:
    """Where the study lives and what it must have been started with (picklable)."""
    name: str
    url: str
    attrs: dict  # preset, dataset, metric, minutes, space, --set: a re-run must give the same
    heartbeat: int = HEARTBEAT_S


def _quiet_optuna(optuna) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # gankit prints one line per trial itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def open_storage(url: str, heartbeat: int = HEARTBEAT_S):
    """Optuna's RDBStorage with heartbeats and retries; a one-line error when it cannot be opened."""
    optuna = require("optuna", "tune")
    _quiet_optuna(optuna)
    if url.startswith("postgresql"):
        require("psycopg2", "postgres")
        if url.startswith("postgresql://"):  # SQLAlchemy >= 2.1 reads a bare postgresql:// as psycopg 3, not psycopg2
            url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    kwargs = {"heartbeat_stale_trial_callback": retry(max_retry=MAX_RETRIES)} if retry else {
        "failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRIES)}  # optuna < 4.9
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                              grace_period=3 * heartbeat, **kwargs)
        except (IntegrityError, ProgrammingError) as e:  # workers starting together on a new database race to
            error = e                                    # create its tables: the loser finds them made
            time.sleep(1.0 + attempt)
        except Exception as e:  # a bad URL, a server that refuses us, a driver missing
            error = e
            break
    raise GankitError(f"cannot open the study storage {shown_url(url)}: {str(error).splitlines()[0][:300]}; "
                      "check --storage") from None


def shown_url(url: str) -> str:
    """The storage URL without its password, as printed."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "'(the --storage URL)'"


def load_study(spec: StudySpec, trials: int, create: bool = False):
    """The study (created when `create`), with a TPE sampler and a median pruner; refuses a study started
    with other settings."""
    import optuna

    storage = open_storage(spec.url, spec.heartbeat)
    direction = JUDGES.get(spec.attrs["metric"]).direction
    sampler = optuna.samplers.TPESampler(n_startup_trials=min(10, max(2, trials // 2)), constant_liar=True)
    # the median pruner: after 2+ finished trials, never on a trial's first evaluation
    pruner = optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, trials // 4)), n_warmup_steps=2)
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                direction=direction, load_if_exists=True)
    have = study.user_attrs.get("gankit")
    if have is None and create:
        study.set_user_attr("gankit", spec.attrs)
    elif have != spec.attrs:
        diff = sorted(k for k in spec.attrs if (have or {}).get(k) != spec.attrs[k])
        raise GankitError(f"study '{spec.name}' in {shown_url(spec.url)} was started with other {', '.join(diff)}; "
                          "give the options it was started with, or another --study (or --out)")
    return study


def counts(study) -> tuple[int, int]:
    """(finished: completed or pruned, running) trials of the study."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    return done, sum(t.state == TrialState.RUNNING for t in trials)


def describe(t) -> str:
    """One line about a finished trial."""
    a = t.user_attrs
    where = f" in {a['seconds']} s, {a['steps']} steps" if "steps" in a else ""
    from optuna.trial import TrialState

    if t.state == TrialState.COMPLETE:
        return f"trial {t.number}: {t.value:.6g}{where}  {t.params}"
    reason = a.get("error") or ("interrupted; queued again" if a.get("interrupted") else "")
    if t.state == TrialState.PRUNED:
        reason = f"at evaluation {max(t.intermediate_values, default=0)}, last value {t.value:.4g}"
    state = "pruned" if t.state == TrialState.PRUNED else "failed"
    return f"trial {t.number}: {state}{f' ({reason})' if reason else ''}{where}  {t.params}"


def work(study_spec: StudySpec, spec: TrialSpec, worker: int = 0, log: Callable[[str], None] = print) -> None:
    """One worker: run trials until the study has N finished ones (waiting on the last running ones, which
    may turn out stale and come back as retries)."""
    import optuna

    study, fails, waiting = load_study(study_spec, spec.trials), 0, False
    objective = partial(run_trial, spec=spec)
    while True:
        done, running = counts(study)
        if done >= spec.trials:
            return
        if done + running >= spec.trials:
            if not waiting:
                log(f"worker {worker}: waiting for {running} running trial(s) (other workers', or stale after "
                    f"{3 * study_spec.heartbeat} s)")
            waiting = True
            time.sleep(POLL_S)
            optuna.storages.fail_stale_trials(study)
            continue
        ran: list = []
        study.optimize(objective, n_trials=1, catch=(GankitError, TrialFailed, Surplus),
                       callbacks=[lambda _, t, seen=ran: seen.append(t)])
        t = ran[-1]
        if t.user_attrs.get("surplus"):
            continue
        log(f"{describe(t)} [worker {worker}]")
        fails = fails + 1 if t.state == optuna.trial.TrialState.FAIL else 0
        if fails >= MAX_FAILS:
            raise GankitError(f"{fails} trials in a row failed, the last with: {t.user_attrs.get('error', '?')}; "
                              "fix the space or --set and run the command again")


def _worker_main(study_spec: StudySpec, spec: TrialSpec, worker: int) -> None:
    """A worker process: its exit code says how it ended (0 done, 2 a user error printed, 130 interrupted)."""
    log = partial(print, file=sys.stderr, flush=True)
    try:
        work(study_spec, spec, worker, log)
    except GankitError as e:
        log(f"gankit: error: {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(study_spec: StudySpec, spec: TrialSpec, jobs: int, log) -> None:
    """`jobs` worker processes (spawned: no forked thread pools), or this process alone for one job. Ctrl-C
    reaches every worker (one process group): each stops its run cleanly and queues the trial again."""
    if jobs == 1:
        work(study_spec, spec, 0, log)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(study_spec, spec, i), daemon=False) for i in range(jobs)]
    for p in procs:
        p.start()
    interrupted = False
    while any(p.is_alive() for p in procs):
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:  # the workers got it too; wait for them to stop their runs
            interrupted = True
    codes = [p.exitcode for p in procs]
    if interrupted or 130 in codes:
        raise KeyboardInterrupt
    bad = [(i, c) for i, c in enumerate(codes) if c]
    if bad:
        raise GankitError(f"worker {bad[0][0]} stopped with exit code {bad[0][1]} (its message is above); "
                          "run the same command again to continue the study")
