"""gankit.evaluate: score a run (a GAN overall or class by class, or an image-to-image run) or two sets. It is
what `gankit eval` calls. A run's result is shown (the `show` callback) before it is recorded in the run
folder, so a folder that cannot be written never loses it.

    gankit.evaluate("runs/dcgan", metrics="fid,kid", num=5000)
    gankit.evaluate(real="fashion-mnist", fake="samples.npz", features="judge")
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config import Config
from ..errors import GankitError
from ..run import read_config
from .catalog import parse_metrics
from .record import record_result

Show = Callable[[dict, str], None]  # (the result, its table as text) -> None


@dataclass
class _Job:
    """One evaluation planned: how to compute it (without recording), its table, where it is recorded."""
    compute: Callable[[], dict]
    table: Callable[[dict], str]
    run: Optional[Path] = None
    cfg: Optional[Config] = None


def format_translation(result: dict) -> str:
    lines = [f"{k:<22} {v:.6g}" for k, v in result["metrics"].items()]
    return "\n".join(lines + [f"# held-out: {result['n']}"] + [f"# {note}" for note in result["notes"]])


def printer(as_json: bool) -> Show:
    """The `show` of `gankit eval`: the table, or the result as one JSON object (--json)."""
    return lambda result, table: print(json.dumps(result) if as_json else table, flush=True)


def _run_job(run: str | Path, metrics: Optional[list[str]], per_class: bool, o: dict) -> _Job:
    from .evaluate import evaluate_run, format_table

    cfg = read_config(Path(run))
    where = dict(run=Path(run), cfg=cfg)
    if o["split"] != "train" and (per_class or cfg.is_translation):
        raise GankitError("--split test applies to a GAN run's overall scores; drop --per-class, or --split "
                          "(an image-to-image run is always scored on its held-out pairs)")
    if _refining(o):
        from ..refine.networks import check_refinable

        if per_class:
            raise GankitError("--per-class scores plain samples of each class; drop --refine (gankit sample --class K "
                              "--refine METHOD draws refined samples of one class)")
        check_refinable(cfg, run)
    if cfg.is_translation:
        from .translation import evaluate_translation

        if metrics or per_class:
            raise GankitError("an image-to-image run is scored on its held-out images (L1, SSIM, cycle error); "
                              "drop --metrics and --per-class")
        return _Job(lambda: evaluate_translation(str(run), o["checkpoint"], o["device"], o["seed"], record=False),
                    format_translation, **where)
    if per_class:
        from .classes import class_names
        from .per_class import evaluate_per_class, format_per_class

        return _Job(lambda: evaluate_per_class(str(run), o["num"], o["checkpoint"], o["seed"], o["features"],
                                               o["device"], record=False),
                    lambda r: format_per_class(r, class_names(cfg, len(r["per_class"]))), **where)
    return _Job(lambda: evaluate_run(str(run), metrics, o["features"], o["num"], o["checkpoint"], o["seed"],
                                     o["inception_weights"], o["real_stats"], o["device"], record=False,
                                     refine=o["refine"], refine_settings=o["refine_settings"], split=o["split"],
                                     data_dir=o["data_dir"]),
                format_table, **where)


def _refining(o: dict) -> bool:
    """--refine (other than none) or one of its settings was given."""
    return o["refine"] not in (None, "none") or bool(o["refine_settings"])


def _plan(run, real, fake, metrics, per_class: bool, o: dict) -> _Job:
    """What to score: a run (what kind decides how) or --real against --fake."""
    if run is not None and (real or fake):
        raise GankitError("give either RUN_DIR or --real and --fake, not both")
    if run is not None:
        return _run_job(run, metrics, per_class, o)
    if o["split"] != "train" and (real or fake):
        raise GankitError("--split chooses a run's reference images; with --real SET, SET is the reference")
    if per_class:
        raise GankitError("--per-class scores a run; give RUN_DIR")
    if _refining(o):
        raise GankitError("--refine draws refined samples of a run with its discriminator; give RUN_DIR, not --fake")
    if not (real and fake):
        raise GankitError("nothing to score; give RUN_DIR, or --real SET and --fake SET")
    from .d_acc import refuse_on_sets

    refuse_on_sets(metrics)
    from .evaluate import evaluate_sets, format_table

    return _Job(lambda: evaluate_sets(real, fake, metrics, o["features"], o["num"], o["data_dir"],
                                      o["inception_weights"], o["real_stats"], o["device"]), format_table)


def evaluate(run: Optional[str | Path] = None, *, real: Optional[str] = None, fake: Optional[str] = None,
             metrics: Optional[str | Sequence[str]] = None, features: str = "auto", num: Optional[int] = None,
             checkpoint: Optional[str] = None, seed: int = 0, per_class: bool = False,
             inception_weights: Optional[str] = None, real_stats: Optional[str] = None, data_dir: Optional[str] = None,
             device: str = "auto", record: bool = True, show: Optional[Show] = None, refine: Optional[str] = None,
             refine_settings: Optional[dict] = None, split: str = "train") -> dict:
    """Score a run folder's newest (or named) checkpoint (against its training images, or split="test": the
    real images it never trained on), or the set `fake` against the set `real` (dataset
    names, image folders or .npz files). metrics: names of METRICS, a list or 'fid,kid' (default: those of
    the data's kind); per_class: a class-conditional run class by class. A run's result is shown with
    show(result, table), then appended to its metrics.json and its plots and report.html redrawn (record).
    refine: drs, mh, latent or none, refine_settings: {field: value} of the config section `sample` (default:
    the run's sample section); the report of the refinement is result['refine']."""
    from ..sampling import resolve_device

    o = dict(features=features, num=num, checkpoint=checkpoint, seed=seed, inception_weights=inception_weights,
             real_stats=real_stats, data_dir=data_dir, device=str(resolve_device(device)), refine=refine,
             refine_settings=refine_settings, split=split)
    job = _plan(run, real, fake, parse_metrics(metrics) if metrics else None, per_class, o)
    result = job.compute()
    if show is not None:
        show(result, job.table(result))
    if record and job.run is not None:
        record_result(job.run, result, job.cfg, o["device"])
    return result
