"""`gankit eval`: score a run's generator, or any two sets, with the metrics of METRICS (catalog.py).

Every result records the feature extractor (and its weights), the resize, how many samples of each set
and which reference set and split produced it: FID is only comparable when all of them match.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..config import TOY_DATASETS
from ..errors import GankitError
from ..run import cache_root, read_config
from . import distances as dist
from .catalog import (
    EXTRACTED,
    METRICS,
    Inputs,
    Needs,
    all_metrics,
    check_kind,
    default_metrics,
    default_num,
    parse_metrics,
    training_metric,
)
from .features import EXTRACTORS, JUDGE_DATASETS, Extractor
from .record import record_result
from .sets import IMAGE_LAYOUT, MAX_SET_BYTES, load_set

ALL_METRICS = tuple(m.name for m in all_metrics())
__all__ = ["ALL_METRICS", "JUDGE_DATASETS", "IMAGE_LAYOUT", "MAX_SET_BYTES", "RunEvaluator", "choose_extractor",
           "evaluate_run", "evaluate_sets", "format_table", "load_set", "parse_metrics", "real_features", "score"]
FEATURE_BYTES = 4 * (2048 + 1008)  # float32 Inception features and class probabilities of one image
MIN_FEATURE_SET = 10  # below this, a covariance or a k-nearest-neighbour radius is meaningless (or fails)


def _cache_path(content: str, extractor: Extractor) -> Path:
    return cache_root() / "stats" / f"{extractor.cache_id}-{content}.npz"


def real_features(x: torch.Tensor, extractor: Extractor, stats_file: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of the reference set, cached by content hash (or kept in --real-stats FILE, which is refused
    for another reference set: another split, --num or dataset)."""
    from .judge import content_hash

    content = content_hash(x)
    path = Path(stats_file) if stats_file else _cache_path(content, extractor)
    if path.is_file():
        with np.load(path) as z:
            if stats_file and z["extractor"].item() != extractor.cache_id:
                raise GankitError(f"'{path}' holds statistics of '{z['extractor'].item()}', not of "
                                  f"'{extractor.cache_id}'; use another --real-stats file")
            if stats_file and "content" in z.files and z["content"].item() != content:
                raise GankitError(f"'{path}' holds statistics of another reference set ({len(z['features'])} images; "
                                  f"these are {len(x)}: another --split, --num or dataset); use another --real-stats "
                                  "file")
            return z["features"], z["probs"]
    feats, probs = extractor.features(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    mu, sigma = dist.feature_stats(feats)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, features=feats, probs=probs, mu=mu, sigma=sigma, extractor=np.array(extractor.cache_id),
             content=np.array(content))
    tmp.replace(path)
    return feats, probs


def choose_extractor(features: str, real_spec: str, data_dir: Optional[str], inception_weights: Optional[str],
                     device: str, train_missing: bool = False) -> Extractor:
    """--features auto|inception|judge for the reference set `real_spec` (see features.EXTRACTORS)."""
    return EXTRACTORS.get(features)(real_spec, data_dir, inception_weights, device, train_missing)


def warn_small_fid(metrics: Sequence[str], *sets: torch.Tensor) -> None:
    """FID's estimate is biased upwards on small sets: warn below 2048 images."""
    n = min(len(x) for x in sets)
    biased = [METRICS.get(m).name.upper() for m in metrics if METRICS.get(m).biased_when_small]
    if biased and sets[0].dim() == 4 and n < 2048:
        warnings.warn(f"{biased[0]} on {n} samples is biased upwards (use 2048 or more; 10000 for numbers comparable "
                      f"with papers); compare it only with {biased[0]}s on as many samples, or use KID", stacklevel=3)


def score(real: torch.Tensor, fake: torch.Tensor, metrics: Sequence[str], real_spec: str,
          extractor_factory: Callable[[], Extractor], real_stats: Optional[str] = None, data_dir: Optional[str] = None,
          device: str = "cpu") -> tuple[dict, dict]:
    """Compute the metrics: features only when one of them needs them, the reference set's only when one
    compares with it. Returns (values, extractor info)."""
    points = fake.dim() == 2
    if points and real_spec not in TOY_DATASETS:
        raise GankitError(f"2-D samples are scored against ring or grid with --metrics {','.join(default_metrics(True))}")
    chosen = check_kind(metrics, points, real_spec)
    needs = Needs(0)
    for m in chosen:
        needs |= m.needs
    inputs = Inputs(real_spec, points=fake if points else None, images=None if points else fake, data_dir=data_dir,
                    device=device)
    # no feature extractor: 2-D points are scored as they are; a stacked set's modes by the judge's class per channel
    info, extras = {"extractor": "none (2-D points)" if points else "the judge's classes per channel"}, {}
    if needs & EXTRACTED:
        ex = extractor_factory()
        if needs & Needs.REAL_FEATURES and min(len(real), len(fake)) < MIN_FEATURE_SET:
            raise GankitError(f"{len(real)} reference images and {len(fake)} samples: FID, KID and precision/recall "
                              f"need at least {MIN_FEATURE_SET} of each (2,048 or more for a usable FID); use a larger "
                              "--num, or a larger held-out set (data.holdout) or training set")
        if needs & Needs.REAL_FEATURES:
            inputs.real_features = real_features(real, ex, real_stats)[0]
        inputs.fake_features, inputs.fake_probs = ex.features(fake)
        info, extras = dict(ex.info), ex.extras(inputs.fake_probs)
    values: dict = {}
    for m in chosen:
        values.update(m.compute(inputs))
    values.update(extras)
    return values, info


def evaluate_sets(real_spec: str, fake_spec: str, metrics: Optional[Sequence[str]] = None, features: str = "auto",
                  num: Optional[int] = 10000, data_dir: Optional[str] = None, inception_weights: Optional[str] = None,
                  real_stats: Optional[str] = None, device: str = "cpu") -> dict:
    """Score --fake against --real (default metrics: those of the fake set's kind, images or 2-D points)."""
    from ..sampling import check_num

    t0 = time.time()
    num = check_num(10000 if num is None else num)
    fake, fake_desc = load_set(fake_spec, num, data_dir)
    real, real_desc = load_set(real_spec, num, data_dir)
    metrics = parse_metrics(metrics) if metrics else default_metrics(fake.dim() == 2)
    warn_small_fid(metrics, fake, real)
    factory = lambda: choose_extractor(features, real_spec, data_dir, inception_weights, device)  # noqa: E731
    values, info = score(real, fake, metrics, real_spec, factory, real_stats, data_dir, device)
    return {"metrics": values, "features": info, "real": real_desc, "fake": fake_desc,
            "seconds": round(time.time() - t0, 1)}


def _fake_set(G, cfg, num: int, seed: int, device: str, images: bool) -> torch.Tensor:
    """num samples of G, generated in chunks (images kept as uint8)."""
    from ..data import to_uint8
    from ..sampling import generate_chunks

    return torch.cat([to_uint8(x) if images else x for x in generate_chunks(G, cfg, num, seed=seed, device=device)])


def _generated(run: Path, G, cfg, num: int, seed: int, device: str, checkpoint: Optional[str], refine: Optional[str],
               settings: Optional[dict]) -> tuple[torch.Tensor, Optional[dict]]:
    """The set scored: plain samples of G, or refined ones and the refinement's report."""
    from ..data import to_uint8
    from ..refine.api import NONE, fake_set, options

    method = options(cfg, refine, settings).refine
    if method == NONE:
        return _fake_set(G, cfg, num, seed, device, images=not cfg.is_toy), None
    return fake_set(run, num, seed, checkpoint, device, method, settings, None if cfg.is_toy else to_uint8)


SPLITS = ("train", "test")


def real_images(cfg, split: str) -> torch.Tensor:
    """The reference images of a run: its training set ("train"), or the real images never trained on
    ("test"): the data.holdout share set aside, else the dataset's own test split, whole even when the run
    trained on a subset (data.limit), so runs on 500 or 60,000 images are judged against the same images."""
    from ..data import load_dataset, load_splits

    if split == "train":
        return load_dataset(cfg.data, cfg.train.seed).x
    data = cfg.data if cfg.data.holdout else dataclasses.replace(cfg.data, limit=None)
    try:
        held, why = load_splits(data, cfg.train.seed, strict=True)[1], ""
    except GankitError as e:  # the test split is not on disk: say what is missing
        held, why = None, f" ({e})"
    if held is None:
        raise GankitError(f"the run's dataset '{cfg.data.dataset}' has no held-out images to score against{why}; "
                          "give the folder that has them with --data-dir, or use --split train")
    return held.x


def _with_discriminator(run: Path, cfg, metrics, others, checkpoint, num, device, refine, refine_settings) -> dict:
    """d_acc (the run's D on plain samples) and `others(names)`, the other metrics, beside it."""
    from ..refine.api import NONE, options
    from .d_acc import evaluate_with_discriminator

    asked = options(cfg, refine, refine_settings).refine != NONE and (refine is not None or refine_settings)
    if asked and all(METRICS.get(m).needs & Needs.DISCRIMINATOR for m in metrics):
        raise GankitError("--metrics d_acc scores the run's D on plain samples; --refine applies to the other "
                          "metrics: add one (e.g. --metrics d_acc,fid) or drop --refine")
    return evaluate_with_discriminator(str(run), metrics, others, checkpoint, num, device)


def evaluate_run(run_dir: str, metrics: Optional[Sequence[str]] = None, features: str = "auto",
                 num: Optional[int] = None, checkpoint: Optional[str] = None, seed: int = 0,
                 inception_weights: Optional[str] = None, real_stats: Optional[str] = None,
                 device: str = "cpu", record: bool = True, refine: Optional[str] = None,
                 refine_settings: Optional[dict] = None, split: str = "train", data_dir: Optional[str] = None) -> dict:
    """Score a run's newest (or named) checkpoint against its training data (split="test": the real images
    held out from training, see real_images; data_dir: where they are, if not where the run read them);
    record it in metrics.json (and redraw the run's plots and report). refine: drs, mh, latent or none
    (default: the run's sample.refine)."""
    from ..sampling import check_num, load_generator_checkpoint, resolve_device

    t0, run, device = time.time(), Path(run_dir), str(resolve_device(device))
    cfg = read_config(run)
    if data_dir is not None:
        cfg.data = dataclasses.replace(cfg.data, data_dir=str(data_dir))
    metrics = parse_metrics(metrics) if metrics else default_metrics(cfg.is_toy)
    check_kind(metrics, cfg.is_toy, cfg.data.dataset)  # before anything is generated
    if split not in SPLITS:
        raise GankitError(f"--split is train or test, not '{split}'")
    if any(METRICS.get(m).needs & Needs.DISCRIMINATOR for m in metrics):  # d_acc: the run's D (d_acc.py)
        others = lambda names: evaluate_run(run_dir, names, features, num, checkpoint, seed, inception_weights,  # noqa: E731
                                            real_stats, device, record=False, refine=refine,
                                            refine_settings=refine_settings, split=split, data_dir=data_dir)
        result = _with_discriminator(run, cfg, metrics, others, checkpoint, num, device, refine, refine_settings)
        if record:
            record_result(run, result, cfg, device)
        return result
    G, gcfg, path, ckpt = load_generator_checkpoint(run, checkpoint, device)
    each = 2 * (int(np.prod(ckpt["shape"])) + FEATURE_BYTES)  # uint8 real and fake images and their features
    num = check_num(default_num(metrics, cfg.is_toy, cfg.data.dataset) if num is None else num,
                    bytes_each=0 if cfg.is_toy else each)
    fake, refined = _generated(run, G, gcfg, num, seed, device, checkpoint, refine, refine_settings)
    real = real_images(cfg, split)
    if len(real) > num:
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:num].sort().values]
    spec = cfg.data.dataset
    factory = lambda: choose_extractor(features, spec, cfg.data.data_dir, inception_weights, device)  # noqa: E731
    values, info = score(real, fake, metrics, spec, factory, real_stats, cfg.data.data_dir, device)
    result = {"metrics": values, "features": info, "step": int(ckpt["step"]), "checkpoint": path.name,
              "real": {"source": spec, "kind": "dataset", "split": split, "n": len(real)},
              "fake": {"source": f"{run.name}/{path.name}", "kind": "generator", "n": len(fake), "seed": seed},
              "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if refined is not None:  # the samples scored were refined by the run's D (gankit.refine)
        result["refine"] = refined
    if record:
        record_result(run, result, cfg, device)
    return result


def format_table(result: dict) -> str:
    """One line per metric: its name, then its value; then where the numbers come from (# lines)."""
    lines = [f"{k:<16} {v:.6g}" if isinstance(v, float) else f"{k:<16} {v}" for k, v in result["metrics"].items()]
    f = result["features"]
    lines.append(f"# features: {f.get('extractor')}; weights: {f.get('weights', '-')}; resize: {f.get('resize', '-')}")
    lines.append(f"# real: {result['real']['source']} ({result['real'].get('split', result['real']['kind'])}, "
                 f"n={result['real']['n']}); fake: {result['fake']['source']} (n={result['fake']['n']})")
    if result.get("refine"):
        from ..refine.api import describe

        lines.append(f"# {describe(result['refine'])}")
    return "\n".join(lines)


class RunEvaluator:
    """Scores the generator during training with one metric (catalog.training_metric) on `eval_num`
    samples; remembers the best. Called by the training loop as evaluator(recipe) -> {name: value}."""

    def __init__(self, cfg, real: torch.Tensor, device: torch.device):
        self.cfg, self.device = cfg, device
        self.metric = training_metric(cfg)
        self.num = cfg.train.eval_num
        self.best: Optional[float] = None
        self.info: dict = {}
        self.extractor: Optional[Extractor] = None
        self.real_feats: Optional[np.ndarray] = None
        if self.metric.needs & EXTRACTED:
            ds = cfg.data.dataset
            self.extractor = choose_extractor(cfg.train.eval_features, ds, cfg.data.data_dir, None, str(device),
                                              train_missing=True)  # the judge is trained once, then cached
            if self.metric.needs & Needs.REAL_FEATURES:
                real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[: self.num]]
                self.real_feats = real_features(real.cpu(), self.extractor)[0]
            self.info = dict(self.extractor.info)

    @torch.no_grad()
    def __call__(self, recipe) -> dict:
        """Returns {value: number, ...} of the recipe's G (its EMA when kept), put back in the mode it was in."""
        from ..data import to_uint8
        from ..sampling import generate

        G = recipe.sampling_net("G")
        was_training = G.training
        G.eval()
        fake = generate(G, self.cfg, self.num, seed=1, device=self.device)
        G.train(was_training)
        inputs = Inputs(self.cfg.data.dataset, quick=True)
        if self.extractor is None:
            inputs.points = fake
        else:
            inputs.fake_features, inputs.fake_probs = self.extractor.features(to_uint8(fake))
            inputs.real_features = self.real_feats
        values = self.metric.compute(inputs)
        return {k: float(values[k]) for k in self.metric.follows}

    def is_best(self, values: dict) -> bool:
        """True (and remembered) when values beat the best so far."""
        v = self.metric.score(values)
        better = self.metric.better(v, self.best)
        if better:
            self.best = v
        return better
