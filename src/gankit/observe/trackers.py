"""Experiment trackers (`--tracker tensorboard|mlflow|wandb`) behind one small interface.

The training loop (training/watch.py) reports to a `Trackers` fan-out: the scalars of every log row, the
sample grid of every epoch, the metrics of every evaluation, the config once, and at the end the exported
generator as an artifact. TensorBoard writes RUN_DIR/tensorboard; MLflow logs to $MLFLOW_TRACKING_URI or
--tracker-uri, else to a local store in RUN_DIR/mlflow (SQLite, artifacts beside it: MLflow 3 refuses its
old file store); W&B runs offline (RUN_DIR/wandb) unless WANDB_MODE, WANDB_API_KEY or --tracker-uri say
otherwise. Each package is imported only when its tracker is chosen; a missing one is a one-line error.

A tracker may ask the run to stop by setting `stop_reason` (the run ends cleanly at that epoch's end): the
tuner's pruner (gankit.tune) is such a tracker, attached to the runs it starts with `attached(...)`.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator, Optional

import yaml

from ..errors import GankitError
from ..registry import Registry

TRACKERS: Registry[type] = Registry("tracker")
NOT_PLOTTED = frozenset({"step", "epoch"})  # a log row's position, not a value
IDS_FILE = "trackers.json"  # RUN_DIR/trackers.json: the tracker's run ids, so a resumed run logs to the same run


class Tracker:
    """The interface. Every method does nothing here; adapters override what they keep."""
    stop_reason: Optional[str] = None  # set to end the run at the next epoch's end
    takes_artifacts = False  # log_artifact keeps files (worth exporting the model for)

    def log_config(self, config: dict) -> None: ...
    def log_scalars(self, step: int, values: dict) -> None: ...
    def log_image(self, step: int, name: str, path: Path) -> None: ...
    def log_metrics(self, step: int, values: dict) -> None: ...
    def log_artifact(self, folder: Path) -> None: ...
    def close(self) -> None: ...


def numbers(values: dict) -> dict[str, float]:
    """The plottable values of a log row or a metrics dict (no step, epoch, flags or text)."""
    return {k: float(v) for k, v in values.items() if k not in NOT_PLOTTED
            and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def require(module: str, extra: str):
    """Import an optional package or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise GankitError(f"this tracker needs the {module} package: pip install 'gankit[{extra}]'") from None


PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def tracker_names(cfg) -> list[str]:
    """The trackers a config names: train.tracker, and tensorboard for train.tensorboard."""
    t = cfg.train
    return list(dict.fromkeys(([t.tracker] if t.tracker else []) + (["tensorboard"] if t.tensorboard else [])))


def check_trackers(cfg) -> None:
    """Each tracker's package is installed (without importing it): checked before a run folder is made."""
    import importlib.util

    for name in tracker_names(cfg):
        module, extra = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            require(module, extra)


def _ids(run: Path) -> dict:
    p = run / IDS_FILE
    try:
        return json.loads(p.read_text()) if p.is_file() and p.stat().st_size < 4096 else {}
    except (ValueError, OSError):
        return {}


def _remember(run: Path, name: str, run_id: str) -> None:
    (run / IDS_FILE).write_text(json.dumps({**_ids(run), name: run_id}))


# ---------------------------------------------------------------- the adapters
@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    def __init__(self, run: Path, uri: Optional[str]):
        from .tensorboard import TensorBoard

        self.tb = TensorBoard(run)

    def log_config(self, config: dict) -> None:
        text = yaml.safe_dump(config, sort_keys=False)
        self.tb.writer.add_text("config", "    " + text.replace("\n", "\n    "))  # markdown code block

    def log_scalars(self, step: int, values: dict) -> None:
        self.tb.scalars({"step": step, **numbers(values)})

    def log_image(self, step: int, name: str, path: Path) -> None:
        self.tb.image(name, path, step)

    def log_metrics(self, step: int, values: dict) -> None:
        self.tb.scalars({"step": step, **numbers(values)}, prefix="eval")

    def close(self) -> None:
        self.tb.close()


def _mlflow_store(run: Path, uri: Optional[str]) -> tuple[str, Optional[str]]:
    """(tracking URI, artifact location for a new experiment): the URI given, else a local store in the run."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    store = (run / "mlflow").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}", (store / "artifacts").as_uri()


def _store_failed(uri: str, e: Exception) -> str:
    """One line for a tracking store MLflow could not open; a plain folder (which MLflow 3 no longer writes,
    its file store being in maintenance mode) gets the database URI to use instead."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    why = first if len(first) <= 300 else first[:297] + "..."
    if "://" not in uri or uri.startswith("file:"):
        folder = Path(uri.removeprefix("file://")).expanduser().resolve()
        return (f"MLflow could not use the folder '{uri}' as a tracking store ({why}); give a database, e.g. "
                f"--tracker-uri sqlite:///{folder / 'mlflow.db'}, or a server URL http://HOST:5000")
    return f"MLflow tracking store '{uri}' failed: {why}; check --tracker-uri or MLFLOW_TRACKING_URI"


# while the tracker is opened: few retries and a short timeout, so that an unreachable server is one line in
# seconds, not minutes of MLflow's backoff (7 retries, 120 s timeout); the user's own settings are kept
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    added = {k: v for k, v in QUICK_HTTP.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@TRACKERS.register("mlflow")
class MLflowTracker(Tracker):
    """MLflow through its client: metrics buffered and sent in batches (a row per step would be slow)."""
    takes_artifacts = True
    FLUSH_S, BATCH = 10.0, 1000

    def __init__(self, run: Path, uri: Optional[str]):
        require("mlflow", "mlflow")
        import logging

        from mlflow.tracking import MlflowClient

        for noisy in ("mlflow.store.db.utils", "alembic"):  # "creating tables" on a new local store
            logging.getLogger(noisy).setLevel(logging.WARNING)
        uri, artifacts = _mlflow_store(run, uri)
        try:
            with _quick_http():
                self.client = MlflowClient(tracking_uri=uri)
                name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "gankit")
                exp = self.client.get_experiment_by_name(name)
                exp_id = exp.experiment_id if exp else self.client.create_experiment(name, artifact_location=artifacts)
                self.id = self._resumed(run) or self.client.create_run(exp_id, run_name=run.name, tags={
                    "gankit.run": str(run.resolve())}).info.run_id
        except Exception as e:  # an unreachable server, a bad URI: before training starts
            raise GankitError(_store_failed(uri, e)) from None
        _remember(run, "mlflow", self.id)
        self.buffer: list = []
        self.flushed = time.monotonic()

    def _resumed(self, run: Path) -> Optional[str]:
        run_id = _ids(run).get("mlflow")
        try:
            return run_id and self.client.get_run(run_id).info.run_id
        except Exception:  # logged to another store: start a new MLflow run
            return None

    def log_config(self, config: dict) -> None:
        from mlflow.entities import Param

        flat = {f"{s}.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                for s, sub in config.items() if isinstance(sub, dict) for k, v in sub.items()}
        have = self.client.get_run(self.id).data.params  # MLflow params never change: a resume adds new ones only
        params = [Param(k, v[:6000]) for k, v in flat.items() if k not in have]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.id, params=params[i:i + 100])
        self.client.log_dict(self.id, config, "config.yaml")

    def _add(self, step: int, values: dict, prefix: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer += [Metric(f"{prefix}/{k}", v, now, step) for k, v in numbers(values).items()]
        if len(self.buffer) >= self.BATCH or time.monotonic() - self.flushed > self.FLUSH_S:
            self.flush()

    def flush(self) -> None:
        while self.buffer:
            batch, self.buffer = self.buffer[:self.BATCH], self.buffer[self.BATCH:]
            self.client.log_batch(self.id, metrics=batch)
        self.flushed = time.monotonic()

    def log_scalars(self, step: int, values: dict) -> None:
        self._add(step, values, "train")

    def log_metrics(self, step: int, values: dict) -> None:
        self._add(step, values, "eval")

    def log_image(self, step: int, name: str, path: Path) -> None:
        self.client.log_artifact(self.id, str(path), artifact_path=name)

    def log_artifact(self, folder: Path) -> None:
        self.client.log_artifacts(self.id, str(folder), artifact_path=folder.name)

    def close(self) -> None:
        self.flush()
        self.client.set_terminated(self.id)


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """Weights & Biases: offline in RUN_DIR/wandb unless WANDB_MODE, WANDB_API_KEY or --tracker-uri (a
    W&B server's address) configure it."""
    takes_artifacts = True

    def __init__(self, run: Path, uri: Optional[str]):
        self.wandb = require("wandb", "wandb")
        mode = os.environ.get("WANDB_MODE") or ("online" if uri or os.environ.get("WANDB_API_KEY") else "offline")
        settings = self.wandb.Settings(base_url=uri) if uri else None
        run_id = _ids(run).get("wandb") or self.wandb.util.generate_id()
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT", "gankit"), name=run.name, id=run_id,
                                   dir=str(run), mode=mode, resume="allow", settings=settings)
        self.name = run.name
        _remember(run, "wandb", run_id)

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_scalars(self, step: int, values: dict) -> None:
        self.run.log({f"train/{k}": v for k, v in numbers(values).items()}, step=step)

    def log_image(self, step: int, name: str, path: Path) -> None:
        self.run.log({name: self.wandb.Image(str(path))}, step=step)

    def log_metrics(self, step: int, values: dict) -> None:
        self.run.log({f"eval/{k}": v for k, v in numbers(values).items()}, step=step)

    def log_artifact(self, folder: Path) -> None:
        art = self.wandb.Artifact(f"{self.name}-{folder.name}", type="model")
        art.add_dir(str(folder))
        self.run.log_artifact(art)

    def close(self) -> None:
        self.run.finish()


# ---------------------------------------------------------------- the fan-out the loop talks to
_ATTACHED: list[Tracker] = []


@contextlib.contextmanager
def attached(*trackers: Tracker) -> Iterator[None]:
    """Runs started in this process inside the block also report to `trackers` (the tuner's pruner)."""
    _ATTACHED.extend(trackers)
    try:
        yield
    finally:
        for t in trackers:
            _ATTACHED.remove(t)


class Trackers(Tracker):
    """Every tracker of a run. A tracker that fails while training is switched off with a warning: a
    tracking server going away never ends a run."""

    def __init__(self, members: list[Tracker]):
        self.members = list(members)

    @property
    def stop_reason(self) -> Optional[str]:  # type: ignore[override]
        return next((m.stop_reason for m in self.members if m.stop_reason), None)

    def _each(self, method: str, *args) -> None:
        for m in list(self.members):
            try:
                getattr(m, method)(*args)
            except Exception as e:
                self.members.remove(m)
                warnings.warn(f"tracker {type(m).__name__} failed ({type(e).__name__}: {str(e)[:200]}); it is "
                              "switched off for the rest of this run", stacklevel=2)

    def log_config(self, config: dict) -> None:
        self._each("log_config", config)

    def log_scalars(self, step: int, values: dict) -> None:
        self._each("log_scalars", step, values)

    def log_image(self, step: int, name: str, path: Path) -> None:
        self._each("log_image", step, name, path)

    def log_metrics(self, step: int, values: dict) -> None:
        self._each("log_metrics", step, values)

    def log_artifact(self, folder: Path) -> None:
        self._each("log_artifact", folder)

    def close(self) -> None:
        self._each("close")

    def finish(self, run: Path, saved: bool) -> None:
        """At the end of a run: the exported generator to the trackers that keep artifacts (when the last
        checkpoint was saved), then close them all."""
        if saved and any(m.takes_artifacts for m in self.members):
            with tempfile.TemporaryDirectory(prefix="gankit-model-") as tmp:
                folder = Path(tmp) / "model"
                try:
                    model_artifact(run, folder)
                except (GankitError, OSError, ValueError) as e:
                    warnings.warn(f"no model artifact logged: {e}", stacklevel=2)
                else:
                    self.log_artifact(folder)
        self.close()


def open_trackers(cfg, run: Path) -> Trackers:
    """The trackers the config names (train.tracker, and train.tensorboard), plus those attached; the
    config logged to each."""
    uri = {cfg.train.tracker: cfg.train.tracker_uri}
    trackers = Trackers([TRACKERS.get(n)(Path(run), uri.get(n)) for n in tracker_names(cfg)] + _ATTACHED)
    trackers.log_config(cfg.to_dict())
    return trackers


def model_artifact(run: Path, out: Path) -> Path:
    """The run's generator as `gankit export` writes it (safetensors, config.json, model card, samples)."""
    from ..export.write import export_run

    export_run(run, out)
    return out
