"""`gankit eval RUN --per-class`: a class-conditional run scored class by class with the dataset's judge."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import GankitError
from . import distances as dist
from .record import record_result

PER_CLASS_VALUES = ("fid", "recall", "judge_accuracy")


def _class_scores(ex, real: torch.Tensor, fake: torch.Tensor, k: int) -> dict:
    rf, _ = ex.features(real)
    ff, fp = ex.features(fake)
    return {"fid": dist.fid_from_features(rf, ff), "recall": dist.precision_recall(rf, ff)[1],
            "judge_accuracy": float((np.asarray(fp).argmax(1) == k).mean())}


def evaluate_per_class(run_dir: str, num_per_class: Optional[int] = 1000, checkpoint: Optional[str] = None,
                       seed: int = 0, features: str = "judge", device: str = "cpu", record: bool = True) -> dict:
    """A class-conditional run, class by class, with the dataset's judge: FID and recall (coverage of the
    class's real images) of the samples drawn for each class against that class's training images, and
    the judge's accuracy, the share of them it classifies as the requested class."""
    from ..data import load_dataset, to_uint8
    from ..sampling import check_num, conditioning_of, generate, load_generator_checkpoint, resolve_device
    from .evaluate import FEATURE_BYTES, choose_extractor

    t0, run, device = time.time(), Path(run_dir), str(resolve_device(device))
    G, cfg, path, ckpt = load_generator_checkpoint(run, checkpoint, device)
    if not conditioning_of(G, cfg).takes_class:
        raise GankitError(f"--per-class needs a class-conditional run (cond.mode cgan or acgan), not "
                          f"cond.mode={cfg.cond.mode}")
    if cfg.is_toy:
        raise GankitError("--per-class scores images with a judge; for ring and grid use --metrics modes")
    n = check_num(1000 if num_per_class is None else num_per_class,
                  bytes_each=2 * (int(np.prod(ckpt["shape"])) + FEATURE_BYTES))
    data = load_dataset(cfg.data, cfg.train.seed)
    ex = choose_extractor(features, cfg.data.dataset, cfg.data.data_dir, None, device)
    if ex.class_histogram is None:
        raise GankitError("--per-class needs the judge's classes; use --features judge (train one with "
                          "`gankit judge train`)")
    K = G.num_classes
    per_class, gen = {}, torch.Generator().manual_seed(seed)
    for k in range(K):
        real = data.x[data.labels == k]
        if len(real) > n:
            real = real[torch.randperm(len(real), generator=gen)[:n].sort().values]
        fake = to_uint8(generate(G, cfg, n, seed=seed + k, device=device, classes=torch.full((n,), k, dtype=torch.long)))
        per_class[k] = _class_scores(ex, real, fake, k)
    mean = {f"mean_{m}": float(np.mean([v[m] for v in per_class.values()])) for m in PER_CLASS_VALUES}
    result = {"metrics": mean, "per_class": per_class, "features": dict(ex.info), "step": int(ckpt["step"]),
              "checkpoint": path.name, "real": {"source": cfg.data.dataset, "kind": "dataset", "split": "train",
                                                "n": n, "per": "class"},
              "fake": {"source": f"{run.name}/{path.name}", "kind": "generator", "n": n * K, "seed": seed},
              "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if record:
        record_result(run, result, cfg, device)
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
