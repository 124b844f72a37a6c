"""The semi-supervised GAN's discriminator as a classifier: test accuracy during training, and
`gankit classify RUN IMAGE...`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from ..config import TOY_DATASETS, Config
from ..data import Data, _fit, load_dataset
from ..errors import GankitError
from .classes import CLASS_NAMES, class_names

__all__ = ["CLASS_NAMES", "class_names", "classify", "load_classifier", "TestAccuracy", "test_split"]


def test_split(cfg: Config) -> Data:
    """Held-out labelled examples shaped like the training data (ring/grid: fresh points)."""
    d = cfg.data
    if d.dataset in TOY_DATASETS:
        import dataclasses
        return load_dataset(dataclasses.replace(d, toy_size=5000, limit=None), seed=cfg.train.seed + 1)
    from .judge import test_split as labelled_test_split

    test = labelled_test_split(d.dataset, d.data_dir)  # without reading the training images
    return Data(test.name, _fit(test.x, d.image_size, d.channels), test.labels)


@torch.no_grad()
def d_accuracy(D: nn.Module, cond, data: Data, device: torch.device, batch: int = 1000) -> float:
    """Share of `data` whose class D's K logits rank first (D in eval mode)."""
    was = D.training
    D.eval()
    correct = 0
    for i in range(0, len(data), batch):
        idx = torch.arange(i, min(i + batch, len(data)))
        _, logits = cond.judge(D, data.batch(idx).to(device))
        correct += (logits.argmax(1).cpu() == data.labels[idx].cpu()).sum().item()
    D.train(was)
    return correct / len(data)


class TestAccuracy:
    """Loads the test split once; each call scores D's classifier on it."""

    def __init__(self, cfg: Config, device: torch.device):
        self.data, self.device = test_split(cfg), device

    def __call__(self, D: nn.Module, cond) -> float:
        return d_accuracy(D, cond, self.data, self.device)


def load_classifier(run_dir: str | Path, checkpoint: Optional[str] = None, device: str = "cpu"):
    """The discriminator of a semi-supervised (or AC-GAN) run, in eval mode, with its conditioning.
    Returns (D, cond, cfg, ckpt, path)."""
    from ..conditioning import mode_of
    from ..run import read_checkpoint
    from ..sampling import resolve_device

    device = resolve_device(device)
    cfg, ckpt, path = read_checkpoint(run_dir, checkpoint, device)
    mode = mode_of(cfg.cond, ckpt.get("num_classes", 0))
    if not mode.classifies:
        raise GankitError(f"'{run_dir}' is not a classifier run (cond.mode={cfg.cond.mode}); classify needs a "
                          "semi-supervised (--preset ssgan) or AC-GAN run")
    from ..training.techniques import trained_networks

    _, D, _ = trained_networks(cfg, ckpt)
    return D.to(device).eval(), mode, cfg, ckpt, path


def classify(run_dir: str, images: Sequence[str], checkpoint: Optional[str] = None, device: str = "cpu",
             top: int = 1) -> list[dict]:
    """Classify image files with a semi-supervised run's discriminator."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    from ..data import to_float
    from ..data.folders import square

    D, cond, cfg, ckpt, path = load_classifier(run_dir, checkpoint, device)
    shape = tuple(ckpt["shape"])
    if len(shape) != 3:
        raise GankitError("classify works on image runs; this run was trained on 2-D points")
    names = class_names(cfg, cond.K)
    out = []
    for f in images:
        try:
            with Image.open(f) as im:
                im = im.convert("L" if shape[0] == 1 else "RGB")
                t = TF.pil_to_tensor(im)
        except FileNotFoundError:
            raise GankitError(f"image '{f}' not found") from None
        except (OSError, UnidentifiedImageError):
            raise GankitError(f"'{f}' is not a readable image (png, jpg, ...)") from None
        x = to_float(square(t, shape[1])).unsqueeze(0).to(device)
        with torch.no_grad():
            logits = cond.judge(D, x)[1][0]
        p = logits.softmax(0)
        best = p.argsort(descending=True)[:top].tolist()
        out.append({"image": str(f), "class": best[0], "name": names[best[0]], "probability": float(p[best[0]]),
                    "top": [{"class": k, "name": names[k], "probability": float(p[k])} for k in best],
                    "checkpoint": path.name})
    return out
