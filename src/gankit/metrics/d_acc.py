"""`gankit eval RUN --metrics d_acc`: the run's discriminator on its held-out real images (its test
accuracy: the share it calls real), on training images (the share called real) and on fresh fakes (the
share called fake), with its mean raw output on each, the gap between the two real sets, and r_t =
E[sign(D(x) - boundary)] = 2 * d_acc_train - 1 on the scored training images (clean, not augmented).
The measure is training/overfit.py's, on more images (--num, default EVAL_IMAGES of each set).

A run needs held-out images: the test split of a named dataset, an image folder's test/ subfolder or
data.holdout > 0 when it was trained. Image-to-image runs are scored on their held-out pairs instead.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from ..errors import GankitError

EVAL_IMAGES = 2048  # images of each set scored when --num is not given
NAME = "d_acc"


def compute(inputs) -> dict:
    """The catalog's entry point: the values were measured on the run before (evaluate_with_discriminator)."""
    if inputs.discriminator is None:
        raise GankitError("--metrics d_acc scores a run's discriminator; give RUN_DIR, not --real/--fake")
    return dict(inputs.discriminator)


def refuse_on_sets(metrics: Optional[Sequence[str]]) -> None:
    if metrics and NAME in metrics:
        raise GankitError("--metrics d_acc scores a run's discriminator; give RUN_DIR, not --real/--fake")


def load_networks(run_dir: str | Path, checkpoint: Optional[str], device: str):
    """(G as trained, D, conditioning, config, checkpoint, its path) of a GAN run's checkpoint: the networks
    D was trained with (not G's EMA)."""
    from ..run import read_checkpoint
    from ..training.techniques import trained_networks

    cfg, ckpt, path = read_checkpoint(run_dir, checkpoint, device)
    if cfg.is_translation:
        raise GankitError("d_acc is measured for GANs from z; an image-to-image run is scored on its held-out "
                          "pairs (gankit eval RUN: L1, SSIM, cycle error)")
    G, D, cond = trained_networks(cfg, ckpt)
    return G.to(device), D.to(device), cond, cfg, ckpt, path


def measure_run(run_dir: str | Path, checkpoint: Optional[str] = None, num: Optional[int] = None,
                device: str = "cpu") -> dict:
    """D's overfitting measures on a run's checkpoint. Returns a result as `gankit eval` records it."""
    import torch

    from ..data import load_splits
    from ..training.overfit import boundary_of, build_probe, heldout_usable, measure

    t0 = time.time()
    G, D, cond, cfg, ckpt, path = load_networks(run_dir, checkpoint, device)
    if cfg.cond.supervised_only:
        raise GankitError("this run trained D's classifier alone (cond.supervised_only): it has no real/fake output "
                          "to score; use gankit eval RUN for its test accuracy")
    train, heldout = load_splits(cfg.data, cfg.train.seed)
    if not heldout_usable(cond, heldout):
        raise GankitError(f"'{run_dir}' has no held-out images D can be scored on ({cfg.data.dataset}); train with "
                          "--set data.holdout=0.1, or give an image folder a test/ subfolder")
    probe = build_probe(cfg, cond, train, heldout, torch.device(device), cfg.train.batch_size, num or EVAL_IMAGES)
    values = measure(G, D, cond, probe, boundary_of(cfg.loss.name))
    if boundary_of(cfg.loss.name) is not None:  # a loss with no fixed boundary (WGAN, RpGAN) has no r_t
        values["r_t"] = 2 * values["d_acc_train"] - 1
    return {"metrics": values, "features": {"extractor": "none (the run's discriminator)"},
            "step": int(ckpt["step"]), "checkpoint": path.name,
            "real": {"source": cfg.data.dataset, "kind": "dataset", "split": "held-out", "n": len(probe.heldout)},
            "fake": {"source": f"{Path(run_dir).name}/{path.name}", "kind": "generator", "n": len(probe.z),
                     "seed": cfg.train.seed},
            "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def evaluate_with_discriminator(run_dir: str, metrics: Sequence[str], evaluate_others, checkpoint: Optional[str],
                                num: Optional[int], device: str) -> dict:
    """d_acc on the run, and the other metrics (evaluate_others(their names) -> a result) beside it."""
    result = measure_run(run_dir, checkpoint, num, device)
    others = [m for m in metrics if m != NAME]
    if others:
        rest = evaluate_others(others)
        rest["metrics"].update(result["metrics"])
        return rest
    return result
