"""The names of a dataset's classes (the named datasets', or a labelled folder's subfolders)."""
from __future__ import annotations

from pathlib import Path

from ..config import Config

CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def class_names(cfg: Config, k: int) -> list[str]:
    name = cfg.data.dataset
    if name in CLASS_NAMES:
        return CLASS_NAMES[name]
    root = Path(name)
    if root.is_dir():
        subs = sorted(p.name for p in root.iterdir() if p.is_dir())
        if len(subs) == k:
            return subs
    return [str(i) for i in range(k)]
