"""`gankit bench ssgan`: the semi-supervised K+1 GAN against the same discriminator trained on the same
labelled examples alone, at equal wall-clock time, on the whole test split; mean ± std over seeds."""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .config import build_config

METHODS = {"K+1 GAN": {}, "supervised only": {"cond": {"supervised_only": True}}}


def run_one(method: str, labels: int, seed: int, minutes: float, out: Path, dataset: str,
            data_dir: Optional[str], extra: Sequence[dict]) -> dict:
    from .metrics.classify import TestAccuracy, load_classifier
    from .training import train

    over = [METHODS[method], {"data": {"dataset": dataset, "data_dir": data_dir},
                              "cond": {"labels_per_class": labels},
                              "train": {"seed": seed, "out": str(out), "minutes": minutes, "epochs": None,
                                        "max_steps": None}}, *extra]
    cfg = build_config("ssgan", overrides=over)
    t0 = time.time()
    summary = train(cfg, quiet=True)
    seconds = time.time() - t0
    D, cond, cfg, _, _ = load_classifier(out)
    scorer = TestAccuracy(cfg, "cpu")
    acc = scorer(D, cond)
    n = len(scorer.data)
    return {"method": method, "labels_per_class": labels, "seed": seed, "steps": summary["steps"],
            "seconds": round(seconds, 1), "test_accuracy": acc, "test_errors": round((1 - acc) * n), "test_size": n}


def bench_ssgan(labels: Sequence[int], seeds: int, minutes: float, dataset: str = "fashion-mnist",
                data_dir: Optional[str] = None, extra: Sequence[dict] = (), out: Optional[str] = None,
                log=print) -> list[dict]:
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="gankit-ssgan-"))
    results = []
    for n in labels:
        for method in METHODS:
            for seed in range(seeds):
                tag = "gan" if method == "K+1 GAN" else "sup"
                r = run_one(method, n, seed, minutes, root / f"{n}-{tag}-{seed}", dataset, data_dir, extra)
                log(f"{n} labels/class, {method}, seed {seed}: {r['test_errors']} test errors of {r['test_size']} "
                    f"({100 * r['test_accuracy']:.2f}% accuracy), {r['steps']} steps")
                results.append(r)
    return results


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def format_ssgan_table(results: list[dict]) -> str:
    """Rows: labels per class; per method test errors (of the whole test split) and accuracy, mean ± std."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    head = f"{'labels/class':<13}" + "".join(f"| {m + ': test errors':>26} {'accuracy %':>14} " for m in methods) + "| seeds"
    lines = [head, "-" * len(head)]
    for n in dict.fromkeys(r["labels_per_class"] for r in results):
        cells, seeds = [], 0
        for m in methods:
            rs = [r for r in results if r["labels_per_class"] == n and r["method"] == m]
            seeds = len(rs)
            em, es = _mean_std([r["test_errors"] for r in rs])
            am, as_ = _mean_std([100 * r["test_accuracy"] for r in rs])
            cells.append(f"| {f'{em:.0f} ± {es:.0f}':>26} {f'{am:.2f} ± {as_:.2f}':>14} ")
        lines.append(f"{n:<13}" + "".join(cells) + f"| {seeds}")
    return "\n".join(lines)
