"""`gankit bench ssgan`: the semi-supervised K+1 GAN against the same discriminator trained on the same
labelled examples alone, at equal wall-clock time, on the whole test split; mean ± std over seeds."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import GankitError
from . import sweep as sw

# method -> overrides on top of the ssgan preset
METHODS = {"K+1 GAN": {}, "supervised only": {"cond": {"supervised_only": True}}}
_TAGS = {"K+1 GAN": "gan", "supervised only": "sup"}  # run folders: OUT/LABELS-TAG-SEED

# rows: labels per class; per method test errors (of the whole test split) and accuracy, mean ± std
SSGAN_TABLE = sw.Table("labels_per_class", "labels/class", 13, (
    sw.Column("test errors", "test_errors", 26, 0),
    sw.Column("accuracy %", "test_accuracy", 14, 2, scale=100)), group_key="method", seeds=True, spread="sd")


def score_ssgan(out: Path, cfg, seed: int) -> dict:
    """Accuracy and errors of the run's discriminator as a classifier on the whole test split."""
    from ..metrics.classify import TestAccuracy, load_classifier

    D, cond, cfg, _, _ = load_classifier(out)
    scorer = TestAccuracy(cfg, "cpu")
    acc = scorer(D, cond)
    n = len(scorer.data)
    return {"test_accuracy": acc, "test_errors": round((1 - acc) * n), "test_size": n}


def _describe(r: dict) -> str:
    return (f"{r['labels_per_class']} labels/class, {r['method']}, seed {r['seed']}: {r['test_errors']} test "
            f"errors of {r['test_size']} ({100 * r['test_accuracy']:.2f}% accuracy), {r['steps']} steps")


def bench_ssgan(labels: Sequence[int], seeds: int, minutes: float, dataset: str = "fashion-mnist",
                data_dir: str | None = None, extra: Sequence[dict] = (), out: str | None = None,
                log=print) -> list[dict]:
    """Both methods for each number of labelled examples per class, `minutes` per run, seeds 0..seeds-1."""
    table, columns = {}, {}
    for n in labels:
        for method, over in METHODS.items():
            name = f"{n}-{_TAGS[method]}"
            table[name] = [over, {"data": {"dataset": dataset, "data_dir": data_dir},
                                  "cond": {"labels_per_class": n}}, sw.budget(minutes)]
            columns[name] = {"method": method, "labels_per_class": n}
    return sw.run_sweep("ssgan", table, seeds, score_ssgan, extra=extra, out=out, columns=columns,
                        prefix="gankit-ssgan-", describe=_describe, log=log)


def format_ssgan_table(results: list[dict]) -> str:
    return sw.format_table(results, SSGAN_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench ssgan`: check the options, run, return the rows."""
    from ..config import parse_override

    try:
        labels = [int(x) for x in sw.split_list(args.labels)]
    except ValueError:
        raise GankitError(f"--labels takes whole numbers separated by commas, got '{args.labels}'") from None
    if not labels or min(labels) < 1 or args.seeds < 1 or args.minutes <= 0:
        raise GankitError("--labels must be positive, --seeds at least 1 and --minutes positive")
    return bench_ssgan(labels, args.seeds, args.minutes, args.dataset, args.data_dir,
                       [parse_override(x) for x in args.set], args.out, log=log)
