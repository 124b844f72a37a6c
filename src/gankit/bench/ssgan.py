"""`gankit bench ssgan`: the semi-supervised K+1 GAN (preset ssgan-mlp, Salimans et al. 2016) with each
switch, against the same discriminator trained on the same labelled examples alone, for the same time and
for LONG_FACTOR times as long (the baseline trained to convergence); test errors of the raw D and of D's
averaged weights (the EMA switch: the same runs, scored twice) on the whole test split, mean ± s.e. over seeds.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import GankitError
from . import sweep as sw

PRESET = "ssgan-mlp"
LONG_FACTOR = 5  # the converged baseline trains this many times the budget
# method tag (run folders: OUT/LABELS-TAG-SEED, --methods) -> (table name, overrides on top of PRESET, budget
# in units of --minutes)
METHODS = {
    "gan": ("K+1 GAN", {}, 1),
    "badgan": ("K+1 GAN + bad GAN", {"cond": {"pull_away": 0.8, "low_density": 1.0}}, 1),
    "consistency": ("K+1 GAN + consistency", {"cond": {"consistency": 1.0}}, 1),
    "sup": ("supervised, same time", {"cond": {"supervised_only": True}}, 1),
    "sup-long": (f"supervised, {LONG_FACTOR}x time", {"cond": {"supervised_only": True}}, LONG_FACTOR),
}

# rows: methods; per number of labels per class: test errors of the raw and of the averaged D, minutes trained
SSGAN_TABLE = sw.Table("method", "method", 24, (
    sw.Column("errors", "test_errors", 13, 0),
    sw.Column("EMA errors", "test_errors_ema", 13, 0),
    sw.Column("min", "minutes", 5, 1, spread=False)), group_key="labels_per_class", seeds=True, spread="se")


def _d_accuracy(D, cond, scorer) -> tuple[float, int]:
    acc = scorer(D, cond)
    return acc, round((1 - acc) * len(scorer.data))


def score_ssgan(out: Path, cfg, seed: int) -> dict:
    """Accuracy and errors on the whole test split of the run's discriminator, raw and (when the run keeps
    one) with its averaged weights; the minutes it trained."""
    import copy

    from ..metrics.classify import TestAccuracy, load_classifier

    D, cond, cfg, ckpt, _ = load_classifier(out)
    scorer = TestAccuracy(cfg, "cpu")
    acc, errors = _d_accuracy(D, cond, scorer)
    row = {"test_accuracy": acc, "test_errors": errors, "test_size": len(scorer.data),
           "minutes": round(ckpt["elapsed"] / 60, 2)}
    averaged = ckpt.get("extra", {}).get("d_ema")
    if averaged is not None:
        D_avg = copy.deepcopy(D)
        D_avg.load_state_dict(averaged)
        row["test_accuracy_ema"], row["test_errors_ema"] = _d_accuracy(D_avg, cond, scorer)
    else:  # no average kept: the raw D stands in, so the column is never empty
        row["test_accuracy_ema"], row["test_errors_ema"] = acc, errors
    return row


def _describe(r: dict) -> str:
    return (f"{r['labels_per_class']} labels/class, {r['method']}, seed {r['seed']}: {r['test_errors']} test errors "
            f"of {r['test_size']} ({100 * r['test_accuracy']:.2f}%), EMA D {r['test_errors_ema']} "
            f"({100 * r['test_accuracy_ema']:.2f}%), {r['steps']} steps in {r['minutes']:.1f} min")


def bench_ssgan(labels: Sequence[int], seeds: int | Sequence[int], minutes: float, dataset: str = "fashion-mnist",
                data_dir: str | None = None, extra: Sequence[dict] = (), out: str | None = None,
                methods: Sequence[str] = tuple(METHODS), log=print, jobs: int = 1) -> list[dict]:
    """Each method for each number of labelled examples per class, `minutes` per run (LONG_FACTOR times that
    for sup-long), seeds 0..seeds-1 or the given seeds."""
    sw.check_names(methods, METHODS, "method")
    table, columns = {}, {}
    for n in labels:
        for tag in methods:
            title, over, factor = METHODS[tag]
            name = f"{n}-{tag}"
            table[name] = [over, {"data": {"dataset": dataset, "data_dir": data_dir},
                                  "cond": {"labels_per_class": n}}, sw.budget(minutes * factor)]
            columns[name] = {"method": title, "labels_per_class": n}
    return sw.run_sweep(PRESET, table, seeds, score_ssgan, extra=extra, out=out, columns=columns,
                        prefix="gankit-ssgan-", describe=_describe, log=log, jobs=jobs)


def format_ssgan_table(results: list[dict]) -> str:
    return sw.format_table(results, SSGAN_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench ssgan`: check the options, run, return the rows."""
    from ..config import parse_override

    try:
        labels = [int(x) for x in sw.split_list(args.labels)]
    except ValueError:
        raise GankitError(f"--labels takes whole numbers separated by commas, got '{args.labels}'") from None
    if not labels or min(labels) < 1 or args.minutes <= 0:
        raise GankitError("--labels must be positive and --minutes positive")
    return bench_ssgan(labels, sw.seed_range(args), args.minutes, args.dataset, args.data_dir,
                       [parse_override(x) for x in args.set], args.out,
                       methods=sw.split_list(args.methods, METHODS), log=log,
                       jobs=sw.default_jobs() if args.jobs is None else args.jobs)
