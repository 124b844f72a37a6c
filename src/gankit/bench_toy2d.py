"""`gankit bench toy2d`: the baseline and each technique on ring and grid, several seeds each, in the
layout of PacGAN's Table 1 (modes captured, % high-quality samples, reverse KL; mean ± standard error),
plus wall-clock time per run."""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence


from .config import build_config
from .errors import GankitError
from .metrics.toy import toy_modes

# name -> config overrides on top of the toy preset
TOY_CONFIGS: dict[str, dict] = {
    "GAN": {},
    "PacGAN2": {"tech": {"pack": 2}},
    "PacGAN4": {"tech": {"pack": 4}},
    "minibatch-std": {"model": {"minibatch_std": True}},
    "minibatch-disc": {"model": {"minibatch_discrimination": 8}},
    "spectral-norm": {"tech": {"spectral_norm": True}},
    "R1": {"tech": {"r1_gamma": 0.1}},
    "EMA": {"train": {"ema_decay": 0.999}},
    "label-smoothing": {"tech": {"label_smoothing": 0.9}},
    "instance-noise": {"tech": {"instance_noise": 0.05}},
    "feature-matching": {"tech": {"feature_matching": "add"}},
    "virtual-BN": {"model": {"virtual_batchnorm": True}},
    "unrolled-5": {"tech": {"unrolled_steps": 5}},
    "PacGAN4+EMA": {"tech": {"pack": 4}, "train": {"ema_decay": 0.999}},
}


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def run_one(config: str, dataset: str, seed: int, extra: Sequence[dict], out: Path) -> dict:
    """Train one configuration on one dataset with one seed; score 2,500 samples."""
    from .sampling import generate, load_generator
    from .training import train

    over = [TOY_CONFIGS[config], {"data": {"dataset": dataset}, "train": {"seed": seed, "out": str(out)}}, *extra]
    cfg = build_config("toy", overrides=over)
    t0 = time.time()
    train(cfg, quiet=True)
    seconds = time.time() - t0
    G, gcfg, _ = load_generator(out)
    m = toy_modes(generate(G, gcfg, 2500, seed=seed), dataset)
    return {"config": config, "dataset": dataset, "seed": seed, "seconds": round(seconds, 1), **m}


def bench_toy2d(configs: Sequence[str], datasets: Sequence[str], seeds: int, extra: Sequence[dict] = (),
                out: Optional[str] = None, log=print) -> list[dict]:
    bad = [c for c in configs if c not in TOY_CONFIGS]
    if bad:
        raise GankitError(f"unknown toy configuration '{bad[0]}'; available: {', '.join(TOY_CONFIGS)}")
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="gankit-toy2d-"))
    results = []
    for dataset in datasets:
        for config in configs:
            for seed in range(seeds):
                r = run_one(config, dataset, seed, extra, root / f"{dataset}-{config}-{seed}")
                log(f"{dataset} {config} seed {seed}: {r['modes']}/{r['total_modes']} modes, "
                    f"{r['high_quality']:.1f}% high quality, reverse KL {r['reverse_kl']:.3f}, {r['seconds']} s")
                results.append(r)
    return results


def format_toy_table(results: list[dict]) -> str:
    """One row per configuration; per dataset: modes, % high quality, reverse KL (mean ± s.e.), s/run."""
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    configs = list(dict.fromkeys(r["config"] for r in results))
    head = f"{'config':<17}" + "".join(f"| {d + ': modes':>15} {'% HQ':>13} {'rev. KL':>14} {'s/run':>6} " for d in datasets)
    lines = [head, "-" * len(head)]
    for c in configs:
        cells = []
        for d in datasets:
            rs = [r for r in results if r["config"] == c and r["dataset"] == d]
            if not rs:
                cells.append(" " * 52)
                continue
            (mm, ms), (hm, hs), (km, ks) = (_mean_se([r[k] for r in rs]) for k in ("modes", "high_quality", "reverse_kl"))
            sec = sum(r["seconds"] for r in rs) / len(rs)
            cells.append(f"| {mm:>8.1f} ± {ms:<4.1f} {hm:>6.1f} ± {hs:<4.1f} {km:>6.2f} ± {ks:<5.2f} {sec:>6.0f} ")
        lines.append(f"{c:<17}" + "".join(cells))
    return "\n".join(lines)
