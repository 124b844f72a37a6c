"""`gankit bench toy2d`: the baseline and each technique on ring and grid, several seeds each, in the
layout of PacGAN's Table 1 (modes captured, % high-quality samples, reverse KL; mean ± standard error),
plus wall-clock time per run."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import GankitError
from ..metrics.toy import toy_modes
from . import sweep as sw

# name -> config overrides on top of the toy preset ({"preset": P}: on top of preset P)
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
    "R3GAN": {"preset": "r3gan-toy"},
}
TOY_DATASETS = ("ring", "grid")

# one row per configuration; per dataset: modes, % high quality, reverse KL (mean ± s.e.), s/run
TOY_TABLE = sw.Table("config", "config", 17, (
    sw.Column("modes", "modes", 15, 1, mean_width=8),
    sw.Column("% HQ", "high_quality", 13, 1, mean_width=6),
    sw.Column("rev. KL", "reverse_kl", 14, 2, mean_width=6),
    sw.Column("s/run", "seconds", 6, 0, spread=False)), group_key="dataset")


def score_toy(out: Path, cfg, seed: int) -> dict:
    """Modes captured, % high quality and reverse KL of 2,500 samples of the run's generator."""
    from ..sampling import generate, load_generator

    G, gcfg, _ = load_generator(out)
    return toy_modes(generate(G, gcfg, 2500, seed=seed), cfg.data.dataset)


def _describe(r: dict) -> str:
    return (f"{r['dataset']} {r['config']} seed {r['seed']}: {r['modes']}/{r['total_modes']} modes, "
            f"{r['high_quality']:.1f}% high quality, reverse KL {r['reverse_kl']:.3f}, {r['seconds']} s")


def bench_toy2d(configs: Sequence[str], datasets: Sequence[str], seeds: int, extra: Sequence[dict] = (),
                out: str | None = None, log=print, jobs: int = 1) -> list[dict]:
    """Each configuration on each dataset with seeds 0..seeds-1; runs go to OUT/DATASET-CONFIG-SEED."""
    sw.check_names(configs, TOY_CONFIGS, "toy configuration")
    table = {f"{d}-{c}": [TOY_CONFIGS[c], {"data": {"dataset": d}}] for d in datasets for c in configs}
    columns = {f"{d}-{c}": {"config": c, "dataset": d} for d in datasets for c in configs}
    return sw.run_sweep("toy", table, seeds, score_toy, extra=extra, out=out, columns=columns,
                        prefix="gankit-toy2d-", describe=_describe, log=log, jobs=jobs)


def format_toy_table(results: list[dict]) -> str:
    return sw.format_table(results, TOY_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench toy2d`: check the options, run, return the rows."""
    from ..config import parse_override

    configs = sw.split_list(args.configs, TOY_CONFIGS)
    datasets = sw.split_list(args.datasets)
    if any(d not in TOY_DATASETS for d in datasets):
        raise GankitError(f"--datasets takes ring and/or grid, got '{args.datasets}'")
    return bench_toy2d(configs, datasets, args.seeds, [parse_override(x) for x in args.set], args.out, log=log,
                       jobs=sw.default_jobs() if args.jobs is None else args.jobs)


def list_toy_configs() -> str:
    """`gankit bench toy2d --list`."""
    return sw.list_configs(TOY_CONFIGS, 17)
