"""`gankit eval`: score a run, or any two image sets, with the field's metrics.

Every result records the feature extractor (and its weights), the resize, how many samples of each set
and which reference set and split produced it: FID is only comparable when all of them match.
"""
from __future__ import annotations

import math
import os
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from numpy.lib import format as npformat

from ..config import NAMED_DATASETS, TOY_DATASETS, DataConfig, config_from_dict, load_yaml
from ..errors import GankitError
from . import distances as dist
from .features import Extractor, inception_extractor, judge_extractor
from .history import append_history
from .toy import toy_modes

ALL_METRICS = ("fid", "kid", "is", "pr", "modes")
JUDGE_DATASETS = ("fashion-mnist", "mnist")


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in ALL_METRICS]
    if bad or not names:
        raise GankitError(f"unknown metric '{(bad or [text])[0]}'; available: {', '.join(ALL_METRICS)}")
    return names


MAX_SET_BYTES = 4 << 30  # an .npz array declaring more is refused before it is read
IMAGE_LAYOUT = "uint8 N×H×W×C (C = 1 or 3), or float N×H×W×C in [-1, 1] (converted to uint8)"
_NPZ_HINT = "write it with `gankit sample --out FILE.npz` or np.savez(FILE, images=...)"


def _npz_array(p: Path) -> tuple[str, np.ndarray]:
    """('images' or 'samples', the array) of an .npz: no pickles, and the size its header declares is
    checked before anything is read."""
    if not p.is_file():
        raise GankitError(f"'{p}' not found; give an .npz written by `gankit sample`")
    if not zipfile.is_zipfile(p):
        empty = " (an empty file)" if p.stat().st_size == 0 else ""
        raise GankitError(f"'{p}' is not an .npz (zip) archive{empty}; {_NPZ_HINT}")
    try:
        with zipfile.ZipFile(p) as zf:
            key = next((k for k in ("images", "samples") if f"{k}.npy" in zf.namelist()), None)
            if key is None:
                raise GankitError(f"'{p}' has neither key 'images' nor 'samples'; {_NPZ_HINT}")
            with zf.open(f"{key}.npy") as f:
                version = npformat.read_magic(f)
                read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                shape, _, dtype = read_header(f)
        if dtype.hasobject:
            raise GankitError(f"'{p}' holds Python objects (pickled), which are not loaded; {_NPZ_HINT}")
        if math.prod(shape) * dtype.itemsize > MAX_SET_BYTES:
            raise GankitError(f"'{p}' declares an array of shape {shape} {dtype}, over {MAX_SET_BYTES >> 30} GiB; "
                              "save a subsample")
        with np.load(p, allow_pickle=False) as z:
            return key, z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise GankitError(f"cannot read '{p}' ({type(e).__name__}: {str(e)[:80]}); {_NPZ_HINT}") from None


def _as_images(a: np.ndarray, src: str) -> torch.Tensor:
    """A user's image array -> uint8 [N,C,H,W], or a one-line error naming the expected layout."""
    def bad(problem: str) -> GankitError:
        return GankitError(f"'{src}': {problem}; expected images as {IMAGE_LAYOUT}")

    if a.ndim != 4:
        raise bad(f"an array of shape {a.shape}")
    if a.shape[3] not in (1, 3):
        if a.shape[1] in (1, 3):
            raise bad(f"shape {a.shape} looks channels-first; transpose it with a.transpose(0, 2, 3, 1)")
        raise bad(f"shape {a.shape} has {a.shape[3]} channels")
    if a.shape[0] < 2:
        raise bad(f"{a.shape[0]} image(s), and the metrics need at least 2")
    if a.dtype == np.uint8:
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()
    if a.dtype.kind != "f":
        raise bad(f"dtype {a.dtype}; convert 0..255 values with a.astype(np.uint8)")
    if not np.isfinite(a).all():
        raise bad("NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1 or hi > 1:
        raise bad(f"{a.dtype} values in [{lo:.4g}, {hi:.4g}], outside [-1, 1]")
    from ..data import to_uint8

    return to_uint8(torch.from_numpy(a.astype(np.float32, copy=False))).permute(0, 3, 1, 2).contiguous()


def _as_points(a: np.ndarray, src: str) -> torch.Tensor:
    """A user's 2-D points -> float32 [N,2], or a one-line error."""
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2 or a.dtype.kind not in "fiu" or not np.isfinite(a).all():
        raise GankitError(f"'{src}': 'samples' of shape {a.shape} {a.dtype}; expected finite float N×2 points, "
                          "N >= 2 (as `gankit sample` writes for ring and grid)")
    return torch.from_numpy(a.astype(np.float32))


def _folder_set(p: Path) -> torch.Tensor:
    """An image folder, resized to its first readable image's shorter side."""
    from ..data import folders

    size = None
    if p.is_dir():
        cap = folders.max_image_pixels()
        for f in folders.list_images(p):
            try:
                with folders.open_image(f, cap) as im:
                    size = min(im.size)
                    break
            except folders.UNREADABLE:
                continue
    x = folders.load_labelled_folder(p, size, None)[0]  # raises the folder's own clear errors
    if len(x) < 2:
        raise GankitError(f"image folder '{p}' has {len(x)} readable image(s); the metrics need at least 2")
    return x


def warn_small_fid(metrics: list[str], *sets: torch.Tensor) -> None:
    """FID's estimate is biased upwards on small sets: warn below 2048 images."""
    n = min(len(x) for x in sets)
    if "fid" in metrics and sets[0].dim() == 4 and n < 2048:
        warnings.warn(f"FID on {n} samples is biased upwards (use 2048 or more; 10000 for numbers comparable "
                      "with papers); compare it only with FIDs on as many samples, or use KID", stacklevel=3)


def load_set(spec: str, num: Optional[int], data_dir: Optional[str] = None, seed: int = 0) -> tuple[torch.Tensor, dict]:
    """A set given as a dataset name, an image folder or an .npz from `gankit sample`.
    Returns (uint8 [N,C,H,W] images or float [N,2] points, a description)."""
    p = Path(spec)
    if spec.endswith(".npz"):
        key, a = _npz_array(p)
        x = _as_images(a, spec) if key == "images" else _as_points(a, spec)
        desc = {"source": str(p), "kind": "npz"}
    elif spec in NAMED_DATASETS:
        from ..data import load_dataset

        x = load_dataset(DataConfig(dataset=spec, data_dir=data_dir, toy_size=max(num or 0, 10_000)), seed).x
        desc = {"source": spec, "kind": "dataset", "split": "train"}
    else:
        x = _folder_set(p)
        desc = {"source": str(p), "kind": "folder"}
    if num is not None and len(x) > num:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:num]
        x = x[idx.sort().values]
    desc["n"] = len(x)
    return x, desc


def _cache_path(x: torch.Tensor, extractor: Extractor) -> Path:
    from .judge import content_hash

    h = content_hash(x)
    root = Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit")) / "stats"
    return root / f"{extractor.cache_id}-{h}.npz"


def real_features(x: torch.Tensor, extractor: Extractor, stats_file: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of the reference set, cached by content hash (or kept in --real-stats FILE)."""
    path = Path(stats_file) if stats_file else _cache_path(x, extractor)
    if path.is_file():
        with np.load(path) as z:
            if stats_file and z["extractor"].item() != extractor.cache_id:
                raise GankitError(f"'{path}' holds statistics of '{z['extractor'].item()}', not of "
                                  f"'{extractor.cache_id}'; use another --real-stats file")
            return z["features"], z["probs"]
    feats, probs = extractor.features(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    mu, sigma = dist.feature_stats(feats)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, features=feats, probs=probs, mu=mu, sigma=sigma, extractor=np.array(extractor.cache_id))
    os.replace(tmp, path)
    return feats, probs


def choose_extractor(features: str, real_spec: str, data_dir: Optional[str], inception_weights: Optional[str],
                     device: str) -> Extractor:
    if features == "auto":
        features = "judge" if real_spec in JUDGE_DATASETS else "inception"
    if features == "judge":
        return judge_extractor(real_spec, data_dir, device)
    if features == "inception":
        return inception_extractor(inception_weights, device)
    raise GankitError(f"unknown feature extractor '{features}'; available: auto, inception, judge")


def score(real: torch.Tensor, fake: torch.Tensor, metrics: list[str], real_spec: str,
          extractor_factory, real_stats: Optional[str] = None) -> tuple[dict, dict]:
    """Compute the metrics. Returns (values, extractor info)."""
    values: dict = {}
    if fake.dim() == 2:  # 2-D points: only the toy measures apply
        if real_spec not in TOY_DATASETS:
            raise GankitError("2-D samples are scored against ring or grid with --metrics modes")
        bad = [m for m in metrics if m != "modes"]
        if bad:
            raise GankitError(f"metric '{bad[0]}' needs images; for ring and grid use --metrics modes")
        return toy_modes(fake, real_spec), {"extractor": "none (2-D points)"}
    if "modes" in metrics:
        raise GankitError("--metrics modes is for ring and grid samples; for images use fid,kid,is,pr")
    ex: Extractor = extractor_factory()
    rf, rp = real_features(real, ex, real_stats)
    ff, fp = ex.features(fake)
    if "fid" in metrics:
        values["fid"] = dist.fid_from_features(rf, ff)
    if "kid" in metrics:
        values["kid"], values["kid_std"] = dist.kid(rf, ff)
    if "is" in metrics:
        values["is"], values["is_std"] = dist.inception_score(fp)
    if "pr" in metrics:
        values["precision"], values["recall"] = dist.precision_recall(rf, ff)
    if ex.name == "judge":
        values.update(dist.class_coverage(fp, np.asarray(ex.info["class_histogram"])))
    info = {k: v for k, v in ex.info.items() if k != "class_histogram"}
    return values, info


def evaluate_sets(real_spec: str, fake_spec: str, metrics: list[str], features: str = "auto", num: int = 10000,
                  data_dir: Optional[str] = None, inception_weights: Optional[str] = None,
                  real_stats: Optional[str] = None, device: str = "cpu") -> dict:
    t0 = time.time()
    fake, fake_desc = load_set(fake_spec, num, data_dir)
    real, real_desc = load_set(real_spec, num, data_dir)
    warn_small_fid(metrics, fake, real)
    factory = lambda: choose_extractor(features, real_spec, data_dir, inception_weights, device)  # noqa: E731
    values, info = score(real, fake, metrics, real_spec, factory, real_stats)
    return {"metrics": values, "features": info, "real": real_desc, "fake": fake_desc,
            "seconds": round(time.time() - t0, 1)}


def evaluate_run(run_dir: str, metrics: Optional[list[str]] = None, features: str = "auto",
                 num: Optional[int] = None, checkpoint: Optional[str] = None, seed: int = 0,
                 inception_weights: Optional[str] = None, real_stats: Optional[str] = None,
                 device: str = "cpu", record: bool = True) -> dict:
    """Score a run's newest (or named) checkpoint against its training data; append to metrics.json."""
    from ..sampling import generate, load_generator_checkpoint

    t0 = time.time()
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise GankitError(f"'{run}' is not a gankit run (no config.yaml); give a run folder or --real/--fake")
    cfg = config_from_dict(load_yaml(run / "config.yaml"))
    metrics = metrics or (["modes"] if cfg.is_toy else ["fid", "kid", "is", "pr"])
    num = num or (2500 if cfg.is_toy else 10000)
    G, gcfg, path, ckpt = load_generator_checkpoint(run, checkpoint, device)
    fake = generate(G, gcfg, num, seed=seed, device=device)
    if not cfg.is_toy:
        from ..data import to_uint8
        fake = to_uint8(fake)
    from ..data import load_dataset
    real = load_dataset(cfg.data, cfg.train.seed).x
    if len(real) > num:
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:num].sort().values]
    spec = cfg.data.dataset
    factory = lambda: choose_extractor(features, spec, cfg.data.data_dir, inception_weights, device)  # noqa: E731
    values, info = score(real, fake, metrics, spec, factory, real_stats)
    result = {"metrics": values, "features": info, "step": int(ckpt["step"]), "checkpoint": path.name,
              "real": {"source": spec, "kind": "dataset", "split": "train", "n": len(real)},
              "fake": {"source": f"{run.name}/{path.name}", "kind": "generator", "n": len(fake), "seed": seed},
              "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if record:
        append_history(run / "metrics.json", result)
    return result


def format_table(result: dict) -> str:
    """One line per metric: its name, then its value; then where the numbers come from (# lines)."""
    lines = [f"{k:<16} {v:.6g}" if isinstance(v, float) else f"{k:<16} {v}" for k, v in result["metrics"].items()]
    f = result["features"]
    lines.append(f"# features: {f.get('extractor')}; weights: {f.get('weights', '-')}; resize: {f.get('resize', '-')}")
    lines.append(f"# real: {result['real']['source']} ({result['real'].get('split', result['real']['kind'])}, "
                 f"n={result['real']['n']}); fake: {result['fake']['source']} (n={result['fake']['n']})")
    return "\n".join(lines)


class RunEvaluator:
    """Scores the generator during training with one metric on `eval_num` samples; remembers the best."""

    HIGHER_IS_BETTER = {"is": True, "fid": False, "kid": False, "modes": True}

    def __init__(self, cfg, real: torch.Tensor, device: torch.device):
        self.cfg, self.device = cfg, device
        self.metric = "modes" if cfg.is_toy else cfg.train.eval_metric
        self.num = cfg.train.eval_num
        self.best: Optional[float] = None
        self.info: dict = {}
        if self.metric == "modes" and not cfg.is_toy:
            raise GankitError("train.eval_metric 'modes' is for ring and grid; use fid, kid or is")
        self.extractor = None
        if not cfg.is_toy:
            ds = cfg.data.dataset
            if cfg.train.eval_features in ("auto", "judge") and ds in JUDGE_DATASETS:
                from .judge import train_judge
                train_judge(ds, cfg.data.data_dir, log=lambda m: None)  # cached after the first time
            self.extractor = choose_extractor(cfg.train.eval_features, ds, cfg.data.data_dir, None, str(device))
            real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[: self.num]]
            self.real_feats = real_features(real.cpu(), self.extractor)[0]
            self.info = self.extractor.info

    @torch.no_grad()
    def __call__(self, recipe) -> dict:
        """Returns {metric: value, ...} of the recipe's G (its EMA when kept), put back in the mode it was in."""
        from ..data import to_uint8
        from ..sampling import generate

        G = recipe.sampling_net("G")
        was_training = G.training
        G.eval()
        fake = generate(G, self.cfg, self.num, seed=1, device=self.device)
        G.train(was_training)
        if self.extractor is None:
            vals = toy_modes(fake, self.cfg.data.dataset)
            return {"modes": float(vals["modes"]), "reverse_kl": vals["reverse_kl"],
                    "high_quality": vals["high_quality"]}
        ff, fp = self.extractor.features(to_uint8(fake))
        if self.metric == "fid":
            return {"fid": dist.fid_from_features(self.real_feats, ff)}
        if self.metric == "kid":
            return {"kid": dist.kid(self.real_feats, ff, subsets=20)[0]}
        return {"is": dist.inception_score(fp)[0]}

    def is_best(self, values: dict) -> bool:
        """True (and remembered) when values beat the best so far."""
        v = values[self.metric]
        if self.metric == "modes":  # more modes, then lower reverse KL
            v = v - min(values["reverse_kl"], 10) / 100
        better = self.best is None or (v > self.best if self.HIGHER_IS_BETTER[self.metric] else v < self.best)
        if better:
            self.best = v
        return better


def evaluate_per_class(run_dir: str, num_per_class: int = 1000, checkpoint: Optional[str] = None, seed: int = 0,
                       features: str = "judge", device: str = "cpu", record: bool = True) -> dict:
    """A class-conditional run, class by class, with the dataset's judge: FID and recall (coverage of the
    class's real images) of the samples drawn for each class against that class's training images, and
    the judge's accuracy, the share of them it classifies as the requested class."""
    from ..data import load_dataset, to_uint8
    from ..sampling import generate, load_generator_checkpoint

    t0 = time.time()
    run = Path(run_dir)
    G, cfg, path, ckpt = load_generator_checkpoint(run, checkpoint, device)
    if cfg.cond.mode not in ("cgan", "acgan"):
        raise GankitError(f"--per-class needs a class-conditional run (cond.mode cgan or acgan), not "
                          f"cond.mode={cfg.cond.mode}")
    if cfg.is_toy:
        raise GankitError("--per-class scores images with a judge; for ring and grid use --metrics modes")
    data = load_dataset(cfg.data, cfg.train.seed)
    ex = choose_extractor(features, cfg.data.dataset, cfg.data.data_dir, None, device)
    if ex.name != "judge":
        raise GankitError("--per-class needs the judge's classes; use --features judge (train one with "
                          "`gankit judge train`)")
    K = G.num_classes
    per_class, gen = {}, torch.Generator().manual_seed(seed)
    for k in range(K):
        real = data.x[data.labels == k]
        if len(real) > num_per_class:
            real = real[torch.randperm(len(real), generator=gen)[:num_per_class].sort().values]
        fake = to_uint8(generate(G, cfg, num_per_class, seed=seed + k, device=device,
                                 classes=torch.full((num_per_class,), k, dtype=torch.long)))
        rf, _ = ex.features(real)
        ff, fp = ex.features(fake)
        per_class[k] = {"fid": dist.fid_from_features(rf, ff), "recall": dist.precision_recall(rf, ff)[1],
                        "judge_accuracy": float((np.asarray(fp).argmax(1) == k).mean())}
    mean = {f"mean_{m}": float(np.mean([v[m] for v in per_class.values()])) for m in ("fid", "recall", "judge_accuracy")}
    info = {k: v for k, v in ex.info.items() if k != "class_histogram"}
    result = {"metrics": mean, "per_class": per_class, "features": info, "step": int(ckpt["step"]),
              "checkpoint": path.name, "real": {"source": cfg.data.dataset, "kind": "dataset", "split": "train",
                                                "n": num_per_class, "per": "class"},
              "fake": {"source": f"{run.name}/{path.name}", "kind": "generator", "n": num_per_class * K,
                       "seed": seed}, "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if record:
        append_history(run / "metrics.json", result)
    return result


def format_per_class(result: dict, names: list[str]) -> str:
    lines = [f"{'class':<16} {'FID':>9} {'recall':>7} {'judge acc.':>10}"]
    for k, v in result["per_class"].items():
        lines.append(f"{names[int(k)][:16]:<16} {v['fid']:>9.2f} {v['recall']:>7.3f} {v['judge_accuracy']:>10.3f}")
    m = result["metrics"]
    lines.append(f"{'mean':<16} {m['mean_fid']:>9.2f} {m['mean_recall']:>7.3f} {m['mean_judge_accuracy']:>10.3f}")
    lines.append(f"# features: {result['features'].get('extractor')}; {result['real']['n']} real and fake "
                 f"images per class; fake: {result['fake']['source']}")
    return "\n".join(lines)
