"""Any folder of images (recursive), decoded once into a uint8 tensor held in memory."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..errors import GankitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _load_one(path: Path, size: int) -> tuple[torch.Tensor, bool]:
    """One image -> ([3, size, size] uint8, was_grayscale): shorter side resized, then centre-cropped."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    with Image.open(path) as im:
        im.load()
        gray = im.mode in GRAY_MODES
        im = im.convert("RGB")
    t = TF.pil_to_tensor(im)  # [3,H,W] uint8
    t = TF.resize(t, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(t, [size, size]), gray


def load_folder(root: str | Path, image_size: int | None, channels: int | None) -> torch.Tensor:
    """[N, C, S, S] uint8. Unreadable files are skipped and counted in one warning."""
    return load_labelled_folder(root, image_size, channels)[0]


def load_labelled_folder(root: str | Path, image_size: int | None,
                         channels: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images [N,C,S,S] uint8, labels [N] from each file's first-level subfolder, and the class names
    (files directly in root form class '.')."""
    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"dataset '{root}' is neither a known name nor a folder; use fashion-mnist, "
                          "mnist, cifar10, ring, grid or the path of an image folder")
    paths = list_images(root)
    if not paths:
        raise GankitError(f"image folder '{root}' has no images (.png, .jpg, .jpeg, .webp, .bmp); "
                          "point --dataset at a folder that has some")
    size = image_size or 64
    images, grays, bad, folders = [], [], [], []
    for p in paths:
        try:
            t, gray = _load_one(p, size)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            bad.append(p)
            continue
        images.append(t)
        grays.append(gray)
        rel = p.relative_to(root).parts
        folders.append(rel[0] if len(rel) > 1 else ".")
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s) in '{root}' (first: {bad[0].name})",
                      stacklevel=2)
    if not images:
        raise GankitError(f"none of the {len(paths)} image files in '{root}' could be read; check the files")
    from torchvision.transforms.functional import rgb_to_grayscale

    x = torch.stack(images)  # [N,3,S,S]
    if channels is None:
        channels = 1 if all(grays) else 3
    if channels == 1:  # gray images were expanded to 3 equal channels: keep one; convert colour ones
        x = x[:, :1] if all(grays) else rgb_to_grayscale(x, 1)
    classes = sorted(set(folders))
    labels = torch.tensor([classes.index(f) for f in folders])
    return x.contiguous(), labels, classes
