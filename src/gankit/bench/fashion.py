"""`gankit bench fashion`: recipes and techniques on Fashion-MNIST (or MNIST) at equal wall-clock time, scored
with the dataset's judge (FID, KID, precision and recall in the judge's feature space, classes covered, class
KL), several seeds each. With several budgets (--minutes 2,5,10) each run trains for the longest and is scored
at each budget from the checkpoint it kept then (train.snapshot_minutes)."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ..data.stacked import STACKED_SOURCES
from ..errors import GankitError
from . import sweep as sw


def _tuned(cosine: bool = False, **more: dict) -> dict:
    """The dcgan-tuned rates as overrides of the dcgan preset (fresh dicts each call), plus `more` sections;
    cosine: both rates decayed by half a cosine to a tenth over 17,000 steps (about what 10 minutes of one core's
    CPU time make with the dcgan networks)."""
    rates = {"lr_g": 8.9e-4, "lr_d": 4.2e-4}
    if cosine:  # the tenths written out (4.2e-4 / 10 is not the float 4.2e-5)
        rates = {"lr_g": {"cosine": [8.9e-4, 8.9e-5], "over": 17000},
                 "lr_d": {"cosine": [4.2e-4, 4.2e-5], "over": 17000}}
    return {"optim": {**rates, "beta1": 0.02}, **more}


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
    "EMA-hl10k": {"train": {"ema_half_life": 10000}},
    "RpGAN+R1R2": {"loss": {"name": "rpgan"}, "tech": {"r1_gamma": 0.1, "r2_gamma": 0.1},
                   "optim": {"beta1": 0.0, "beta2": 0.99}},
    "R3GAN": {"preset": "r3gan"},
    "ADA": {"tech": {"ada_target": 0.6}},
    # the best of `gankit tune --preset dcgan` over lr_g, lr_d and beta1 (README, "A tune of the default preset")
    "DCGAN-tuned": _tuned(),
    "DCGAN-tuned+ADA": _tuned(tech={"ada_target": 0.6}),
    "DCGAN-tuned+EMA": _tuned(train={"ema_decay": 0.999}),
    "DCGAN-tuned+cosine": _tuned(cosine=True),
    "DCGAN-tuned+cosine+EMA": _tuned(cosine=True, train={"ema_decay": 0.999}),
    # a slower EMA: with the warm-up's decay (1 + n) / (10 + n) it averages about the last ninth of a 10-minute run
    "EMA-0.9999": {"train": {"ema_decay": 0.9999}},
    "PacGAN2+EMA": {"tech": {"pack": 2}, "train": {"ema_decay": 0.999}},
    "PacGAN2": {"tech": {"pack": 2}},  # D judges pairs (Lin et al. 2018): their Stacked MNIST recipe
    "DCGAN-tuned+PacGAN2": _tuned(tech={"pack": 2}),
}
FASHION_DATASETS = ("fashion-mnist", "mnist", "stacked-fashion-mnist", "stacked-mnist")

# one row per configuration (and budget): judge FID, KID, precision, recall, classes covered, class KL
# (mean ± s.e. over seeds), steps, seeds
FASHION_TABLE = sw.Table("setting", "config", 22, (
    sw.Column("FID (judge)", "fid", 15, 1),
    sw.Column("KID (judge)", "kid", 13, 1),
    sw.Column("precision", "precision", 13, 3),
    sw.Column("recall", "recall", 13, 3),
    sw.Column("classes", "classes_covered", 11, 1),
    sw.Column("class KL", "class_kl", 13, 3),
    sw.Column("steps", "steps", 6, 0, spread=False)), sep=" | ", seeds=True)
SCORED = ("fid", "kid", "precision", "recall", "classes_covered", "class_kl")
# a small training set (--limit): scored against the test split, with D's held-out accuracy at the end and
# the share of runs whose overfitting warning fired
LIMITED_TABLE = sw.Table("setting", "config", 22, (
    *FASHION_TABLE.columns[:5],
    sw.Column("D held-out acc", "d_acc_heldout", 14, 3),
    sw.Column("warned", "overfit_warned", 6, 2, spread=False),
    FASHION_TABLE.columns[-1]), sep=" | ", seeds=True)


# a stacked dataset (1,000 modes = class triples): modes covered and the reverse KL of their histogram to uniform
STACKED_TABLE = sw.Table("setting", "config", 22, (
    sw.Column("modes", "modes", 13, 1),
    sw.Column("reverse KL", "reverse_kl", 13, 3),
    FASHION_TABLE.columns[-1]), sep=" | ", seeds=True)
STACKED_SCORED = ("modes", "reverse_kl")


AT_THE_END = {"d_acc_heldout", "overfit_warned"}  # measured on the run as it ended, not at its snapshots


def overfitting_seen(out: Path) -> dict:
    """D's accuracy on held-out real images when last measured (log.jsonl), and 1.0 if the run's overfitting
    warning fired (diagnostics.jsonl), else 0.0."""
    import json

    from ..observe.diagnostics import OVERFITTING
    from ..run import read_log

    acc = [r["d_acc_heldout"] for r in read_log(out / "log.jsonl") if "d_acc_heldout" in r]
    diag = out / "diagnostics.jsonl"
    kinds = [json.loads(line).get("kind") for line in diag.read_text().splitlines()] if diag.is_file() else []
    if not acc:  # D was never measured (a run shorter than train.sample_every_images): neither is known
        return {"d_acc_heldout": math.nan, "overfit_warned": math.nan}
    return {"d_acc_heldout": acc[-1], "overfit_warned": float(OVERFITTING in kinds)}


def score_fashion(out: Path, cfg, seed: int, num: Optional[int] = None, split: str = "train") -> dict:
    """Judge-feature FID, KID, precision and recall of `num` samples (default 5,000) against the training (or
    test) images, classes covered and class KL; on a stacked dataset, modes covered of 1,000 and their reverse KL
    (default 26,000 samples). With train.snapshot_minutes, the same for each snapshot under "at" ({minutes:
    scores}); with split="test", D's held-out accuracy and whether the overfitting warning fired."""
    from ..metrics.evaluate import evaluate_run
    from ..run import checkpoint_dir

    stacked = cfg.data.dataset in STACKED_SOURCES
    names, keys = (["modes"], STACKED_SCORED) if stacked else (["fid", "kid", "pr"], SCORED)
    num = num if num is not None or stacked else 5000  # a stacked set's default: the papers' 26,000

    def judged(checkpoint):
        r = evaluate_run(str(out), names, features="judge", num=num, seed=seed, checkpoint=checkpoint, split=split)
        return {"steps": r["step"], **{k: r["metrics"][k] for k in keys}}

    snaps = {m: judged(f"minute-{m:g}") for m in cfg.train.snapshot_minutes
             if (checkpoint_dir(out) / f"minute-{m:g}.pt").is_file()}  # not there: the run stopped before
    final = {k: v for k, v in judged(None).items() if k != "steps"}  # last: metrics.json's latest is the run's end
    final.update(overfitting_seen(Path(out)) if split == "test" else {})
    return {**final, "at": snaps} if snaps else final


def _describe(r: dict) -> str:
    if "modes" in r:
        return f"{r['setting']} seed {r['seed']}: {r['steps']} steps, {r['modes']} modes, reverse KL {r['reverse_kl']:.3f}"
    return (f"{r['setting']} seed {r['seed']}: {r['steps']} steps, FID {r['fid']:.1f}, KID {r['kid']:.1f}, "
            f"precision {r['precision']:.3f}, recall {r['recall']:.3f}, {r['classes_covered']} classes, "
            f"class KL {r['class_kl']:.3f}" + (f", D held-out acc {r['d_acc_heldout']:.3f}, overfitting warning "
                                                f"{'fired' if r['overfit_warned'] else 'silent'}"
                                                if "d_acc_heldout" in r else ""))


def parse_budgets(text) -> list[float]:
    """'2,5,10' -> [2.0, 5.0, 10.0] (sorted, positive)."""
    try:
        budgets = sorted({float(x) for x in str(text).split(",") if x.strip()})
    except ValueError:
        budgets = []
    if not budgets or budgets[0] <= 0:
        raise GankitError(f"--minutes takes positive numbers of minutes, e.g. 10 or 2,5,10; got '{text}'")
    return budgets


def _split_budgets(rows: list[dict], budgets: Sequence[float], log) -> list[dict]:
    """One row per run and budget: the snapshots' scores, then the final one at the longest budget."""
    out = []
    for r in rows:
        snaps = r.pop("at", {})
        for m in budgets[:-1]:
            if m in snaps:
                out.append({**r, **dict.fromkeys(AT_THE_END & r.keys(), math.nan), **snaps[m], "minutes": m,
                            "setting": f"{r['config']}, {m:g} min"})
        out.append({**r, "minutes": budgets[-1], "setting": f"{r['config']}, {budgets[-1]:g} min"})
    out.sort(key=lambda r: r["minutes"])  # stable: configurations, then seeds, within each budget
    for r in out:
        if r["minutes"] != budgets[-1]:  # the sweep logged each run's final row when it ended
            log(_describe(r))
    return out


def bench_fashion(configs: Sequence[str], seeds: int | Sequence[int], minutes, dataset: str = "fashion-mnist",
                  num: Optional[int] = None, extra: Sequence[dict] = (), out: str | None = None,
                  data_dir: str | None = None, log=print, jobs: int = 1, limit: int | None = None) -> list[dict]:
    """Each configuration for the longest of `minutes` (a number or '2,5,10') with seeds 0..seeds-1 or the given
    seeds (runs in OUT/CONFIG-SEED), judged at each budget. Rows in order of budget, configuration, seed. limit: train on
    the first `limit` training images only, and judge against the test split (a small dataset)."""
    from ..metrics.judge import train_judge

    sw.check_names(configs, FASHION_CONFIGS)
    if dataset not in FASHION_DATASETS:
        raise GankitError(f"bench fashion runs on {', '.join(FASHION_DATASETS)}, not '{dataset}'")
    if limit is not None and dataset in STACKED_SOURCES:
        raise GankitError("--limit is for fashion-mnist and mnist (a stacked dataset has no test split to judge "
                          "against); leave it out")
    budgets = parse_budgets(minutes)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
        raise GankitError(f"--limit is a number of training images, 2 or more; got {limit!r}")
    sw.refuse_set(extra, "data", ("limit", "holdout", "dataset"), "would override what the bench sets (--limit, "
                  "--dataset, and the test split it judges against); use the bench's own options")
    sw.refuse_set(extra, "train", ("minutes", "snapshot_minutes", "max_steps", "epochs"),
                  "would change the budgets the rows are labelled with; use --minutes")
    train_judge(STACKED_SOURCES.get(dataset, dataset), data_dir, log=log)  # cached after the first time
    common = sw.budget(budgets[-1])
    common["train"]["snapshot_minutes"] = budgets[:-1]
    common["data"] = {"dataset": dataset, "data_dir": data_dir, **({"limit": limit} if limit else {})}
    table = {c: [FASHION_CONFIGS[c], common] for c in configs}
    columns = {c: {"config": c, "setting": f"{c}, {budgets[-1]:g} min", "dataset": dataset,
                   **({"limit": limit} if limit else {})} for c in configs}
    split = "test" if limit else "train"
    rows = sw.run_sweep("dcgan", table, seeds, functools.partial(score_fashion, num=num, split=split), extra=extra, out=out,
                        columns=columns, prefix="gankit-fashion-", describe=_describe, log=log, jobs=jobs)
    return _split_budgets(rows, budgets, log)


def format_fashion_table(results: list[dict]) -> str:
    if any("modes" in r for r in results):
        return sw.format_table(results, STACKED_TABLE)
    limited = any("d_acc_heldout" in r for r in results)
    return sw.format_table(results, LIMITED_TABLE if limited else FASHION_TABLE)


def from_args(args, log=sw.stderr) -> list[dict]:
    """`gankit bench fashion`: check the options, run, return the rows."""
    from ..config import parse_override

    if args.num is not None and args.num < 10:
        raise GankitError(f"--num must be at least 10, got {args.num}")
    return bench_fashion(sw.split_list(args.configs, FASHION_CONFIGS), sw.seed_range(args), args.minutes, args.dataset,
                         args.num, [parse_override(x) for x in args.set], args.out, args.data_dir, log=log,
                         jobs=sw.default_jobs() if args.jobs is None else args.jobs, limit=args.limit)


def list_fashion_configs() -> str:
    """`gankit bench fashion --list`."""
    return sw.list_configs(FASHION_CONFIGS, 16)
