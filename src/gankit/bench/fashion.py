"""`gankit bench fashion`: techniques on Fashion-MNIST (or MNIST) at equal wall-clock time, scored with the
dataset's judge (FID and KID in the judge's feature space, classes covered, class KL), several seeds each."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from ..errors import GankitError
from . import sweep as sw

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
FASHION_DATASETS = ("fashion-mnist", "mnist")

# one row per configuration: judge FID, judge KID, classes covered, class KL (mean ± s.e.), steps, seeds
FASHION_TABLE = sw.Table("config", "config", 16, (
    sw.Column("FID (judge)", "fid", 15, 1),
    sw.Column("KID (judge)", "kid", 13, 1),
    sw.Column("classes", "classes_covered", 11, 1),
    sw.Column("class KL", "class_kl", 13, 3),
    sw.Column("steps", "steps", 6, 0, spread=False)), sep=" | ", seeds=True)


def score_fashion(out: Path, cfg, seed: int, num: int = 5000) -> dict:
    """FID and KID of `num` samples in the judge's feature space, classes covered and class KL."""
    from ..metrics.evaluate import evaluate_run

    m = evaluate_run(str(out), ["fid", "kid"], features="judge", num=num, seed=seed)["metrics"]
    return {"fid": m["fid"], "kid": m["kid"], "classes_covered": m["classes_covered"], "class_kl": m["class_kl"]}


def _describe(r: dict) -> str:
    return (f"{r['config']} seed {r['seed']}: {r['steps']} steps, FID {r['fid']:.1f}, KID {r['kid']:.1f}, "
            f"{r['classes_covered']} classes, class KL {r['class_kl']:.3f}")


def bench_fashion(configs: Sequence[str], seeds: int, minutes: float, dataset: str = "fashion-mnist",
                  num: int = 5000, extra: Sequence[dict] = (), out: str | None = None,
                  data_dir: str | None = None, log=print) -> list[dict]:
    """Each configuration for `minutes` with seeds 0..seeds-1 (runs in OUT/CONFIG-SEED), judged."""
    from ..metrics.judge import train_judge

    sw.check_names(configs, FASHION_CONFIGS)
    if dataset not in FASHION_DATASETS:
        raise GankitError(f"bench fashion runs on fashion-mnist or mnist, not '{dataset}'")
    train_judge(dataset, data_dir, log=log)  # cached after the first time
    common = {"data": {"dataset": dataset, "data_dir": data_dir}, **sw.budget(minutes)}
    table = {c: [FASHION_CONFIGS[c], common] for c in configs}
    columns = {c: {"config": c, "dataset": dataset} for c in configs}
    return sw.run_sweep("dcgan", table, seeds, functools.partial(score_fashion, num=num), extra=extra, out=out,
                        columns=columns, prefix="gankit-fashion-", describe=_describe, log=log)


def format_fashion_table(results: list[dict]) -> str:
    return sw.format_table(results, FASHION_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench fashion`: check the options, run, return the rows."""
    from ..config import parse_override

    if args.minutes <= 0 or args.seeds < 1 or args.num < 10:
        raise GankitError("--minutes must be positive, --seeds at least 1 and --num at least 10")
    return bench_fashion(sw.split_list(args.configs, FASHION_CONFIGS), args.seeds, args.minutes, args.dataset,
                         args.num, [parse_override(x) for x in args.set], args.out, args.data_dir, log=log)


def list_fashion_configs() -> str:
    """`gankit bench fashion --list`."""
    return sw.list_configs(FASHION_CONFIGS, 16)
