"""`gankit bench fashion`: techniques on Fashion-MNIST (or MNIST) at equal wall-clock time, scored with the
dataset's judge (FID and KID in the judge's feature space, classes covered, class KL), several seeds each."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .bench_toy2d import _mean_se
from .config import build_config
from .errors import GankitError

# name -> overrides on top of the dcgan preset (the default of `gankit train`)
FASHION_CONFIGS: dict[str, dict] = {
    "DCGAN": {},
    "TTUR": {"optim": {"lr_d": 4e-4, "lr_g": 1e-4}},
    "label-smoothing": {"tech": {"label_smoothing": 0.9}},
    "spectral-norm": {"tech": {"spectral_norm": True}},
    "EMA": {"train": {"ema_decay": 0.999}},
    "minibatch-std": {"model": {"minibatch_std": True}},
    "DiffAugment": {"tech": {"diffaugment": "translation,color"}},
    "R1": {"tech": {"r1_gamma": 0.1}},
    "hinge+SN": {"loss": {"name": "hinge"}, "tech": {"spectral_norm": True}},
    "EMA+TTUR": {"train": {"ema_decay": 0.999}, "optim": {"lr_d": 4e-4, "lr_g": 1e-4}},
}


def run_one(config: str, dataset: str, seed: int, minutes: float, num: int, extra: Sequence[dict], out: Path,
            data_dir: Optional[str] = None) -> dict:
    """Train one configuration for `minutes` of wall-clock time, then score `num` samples with the judge."""
    from .metrics.evaluate import evaluate_run
    from .training import train

    over = [FASHION_CONFIGS[config],
            {"data": {"dataset": dataset, "data_dir": data_dir},
             "train": {"seed": seed, "out": str(out), "minutes": minutes, "epochs": None, "max_steps": None}},
            *extra]
    cfg = build_config("dcgan", overrides=over)
    t0 = time.time()
    summary = train(cfg, quiet=True)
    seconds = time.time() - t0
    result = evaluate_run(str(out), ["fid", "kid"], features="judge", num=num, seed=seed)
    m = result["metrics"]
    return {"config": config, "dataset": dataset, "seed": seed, "steps": summary["steps"],
            "seconds": round(seconds, 1), "fid": m["fid"], "kid": m["kid"],
            "classes_covered": m["classes_covered"], "class_kl": m["class_kl"]}


def bench_fashion(configs: Sequence[str], seeds: int, minutes: float, dataset: str = "fashion-mnist",
                  num: int = 5000, extra: Sequence[dict] = (), out: Optional[str] = None,
                  data_dir: Optional[str] = None, log=print) -> list[dict]:
    from .metrics.judge import train_judge

    bad = [c for c in configs if c not in FASHION_CONFIGS]
    if bad:
        raise GankitError(f"unknown configuration '{bad[0]}'; available: {', '.join(FASHION_CONFIGS)}")
    if dataset not in ("fashion-mnist", "mnist"):
        raise GankitError(f"bench fashion runs on fashion-mnist or mnist, not '{dataset}'")
    train_judge(dataset, data_dir, log=log)  # cached after the first time
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="gankit-fashion-"))
    results = []
    for config in configs:
        for seed in range(seeds):
            r = run_one(config, dataset, seed, minutes, num, extra, root / f"{config}-{seed}", data_dir)
            log(f"{config} seed {seed}: {r['steps']} steps, FID {r['fid']:.1f}, KID {r['kid']:.1f}, "
                f"{r['classes_covered']} classes, class KL {r['class_kl']:.3f}")
            results.append(r)
    return results


def format_fashion_table(results: list[dict]) -> str:
    """One row per configuration: judge FID, judge KID, classes covered, class KL (mean ± s.e.), steps."""
    head = (f"{'config':<16}| {'FID (judge)':>15} | {'KID (judge)':>13} | {'classes':>11} | {'class KL':>13} | "
            f"{'steps':>6} | seeds")
    lines = [head, "-" * len(head)]
    for c in dict.fromkeys(r["config"] for r in results):
        rs = [r for r in results if r["config"] == c]
        cells = []
        for k, width, digits in (("fid", 15, 1), ("kid", 13, 1), ("classes_covered", 11, 1), ("class_kl", 13, 3)):
            m, s = _mean_se([float(r[k]) for r in rs])
            cells.append(f"{m:.{digits}f} ± {s:.{digits}f}".rjust(width))
        steps = sum(r["steps"] for r in rs) / len(rs)
        lines.append(f"{c:<16}| " + " | ".join(cells) + f" | {steps:>6.0f} | {len(rs)}")
    return "\n".join(lines)
