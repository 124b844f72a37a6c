"""`gankit bench toy2d`: the baseline and each technique on ring and grid, several seeds each, in the
layout of PacGAN's Table 1 (modes captured, % high-quality samples, reverse KL; mean ± standard error),
plus wall-clock time per run."""
from __future__ import annotations

import functools
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


def score_toy(out: Path, cfg, seed: int, refine: Sequence[str] = ()) -> dict:
    """Modes captured, % high quality and reverse KL of 2,500 samples of the run's generator; for each method
    of `refine`, the same of 2,500 samples refined by the run's D, under "refined" ({method: scores})."""
    from ..refine.api import fake_set
    from ..sampling import generate, load_generator

    G, gcfg, _ = load_generator(out)
    raw = toy_modes(generate(G, gcfg, 2500, seed=seed), cfg.data.dataset)
    refined = {}
    for method in refine:
        x, report = fake_set(str(out), 2500, seed, None, "cpu", method)
        refined[method] = {**toy_modes(x, cfg.data.dataset), "g_per_sample": report["g_forward_per_kept"]}
    return {**raw, "refined": refined} if refine else raw


def _split_refined(rows: list[dict]) -> list[dict]:
    """Each run's raw row, then a row 'CONFIG + METHOD' per refinement, configurations in their order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        for method, scores in {"": {}, **r.pop("refined", {})}.items():
            config = f"{r['config']} + {method}" if method else r["config"]
            out.setdefault((r["dataset"], config), []).append({**r, **scores, "config": config})
    return [r for group in out.values() for r in group]


def _packed(config: str) -> bool:
    return TOY_CONFIGS.get(config, {}).get("tech", {}).get("pack", 1) > 1


def check_refine(text: str | None, configs: Sequence[str], extra: Sequence[dict] = ()) -> list[str]:
    """--refine drs,mh: the methods, each known, for configurations whose D scores one sample at a time."""
    from ..refine.methods import METHODS

    methods = [m.strip() for m in sw.split_list(text) if m.strip()] if text else []
    for m in methods:
        if m not in METHODS:
            raise GankitError(f"unknown refinement '{m}' in --refine; choose from {', '.join(METHODS.names())}")
    packed = [c for c in configs if _packed(c)]
    if methods and packed:
        raise GankitError(f"--refine needs a D that scores one sample at a time; {packed[0]} judges packs "
                          "(tech.pack): leave it out of --configs, or drop --refine")
    if methods and any(o.get("tech", {}).get("pack", 1) > 1 for o in extra):
        raise GankitError("--refine needs a D that scores one sample at a time; --set tech.pack makes every D judge "
                          "packs: drop one of them")
    return methods


def _describe(r: dict) -> str:
    refined = "".join(f"; + {m}: {s['modes']} modes, {s['high_quality']:.1f}% HQ, reverse KL {s['reverse_kl']:.3f}"
                      for m, s in r.get("refined", {}).items())
    return (f"{r['dataset']} {r['config']} seed {r['seed']}: {r['modes']}/{r['total_modes']} modes, "
            f"{r['high_quality']:.1f}% high quality, reverse KL {r['reverse_kl']:.3f}, {r['seconds']} s{refined}")


def bench_toy2d(configs: Sequence[str], datasets: Sequence[str], seeds: int | Sequence[int], extra: Sequence[dict] = (),
                out: str | None = None, log=print, jobs: int = 1, refine: Sequence[str] = ()) -> list[dict]:
    """Each configuration on each dataset with seeds 0..seeds-1 (or the given seeds); runs go to
    OUT/DATASET-CONFIG-SEED. refine: each run is also scored on samples refined with each method, as rows
    'CONFIG + METHOD'."""
    sw.check_names(configs, TOY_CONFIGS, "toy configuration")
    table = {f"{d}-{c}": [TOY_CONFIGS[c], {"data": {"dataset": d}}] for d in datasets for c in configs}
    columns = {f"{d}-{c}": {"config": c, "dataset": d} for d in datasets for c in configs}
    rows = sw.run_sweep("toy", table, seeds, functools.partial(score_toy, refine=tuple(refine)), extra=extra,
                        out=out, columns=columns, prefix="gankit-toy2d-", describe=_describe, log=log, jobs=jobs)
    return _split_refined(rows)


def format_toy_table(results: list[dict]) -> str:
    return sw.format_table(results, TOY_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench toy2d`: check the options, run, return the rows."""
    from ..config import parse_override

    configs = sw.split_list(args.configs, [c for c in TOY_CONFIGS if not (args.refine and _packed(c))])
    datasets = sw.split_list(args.datasets)
    if any(d not in TOY_DATASETS for d in datasets):
        raise GankitError(f"--datasets takes ring and/or grid, got '{args.datasets}'")
    extra = [parse_override(x) for x in args.set]
    refine = check_refine(args.refine, configs, extra)
    return bench_toy2d(configs, datasets, sw.seed_range(args), extra, args.out, log=log,
                       jobs=sw.default_jobs() if args.jobs is None else args.jobs, refine=refine)


def list_toy_configs() -> str:
    """`gankit bench toy2d --list`."""
    return sw.list_configs(TOY_CONFIGS, 17)
