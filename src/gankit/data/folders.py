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


def square(t: torch.Tensor, size: int) -> torch.Tensor:
    """[C,H,W] uint8 -> [C,size,size]: shorter side resized (bilinear, antialiased), then centre-cropped."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    t = TF.resize(t, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(t, [size, size])


def _load_one(path: Path, size: int) -> tuple[torch.Tensor, bool]:
    """One image -> ([3, size, size] uint8, was_grayscale)."""
    from torchvision.transforms import functional as TF

    with Image.open(path) as im:
        im.load()
        gray = im.mode in GRAY_MODES
        im = im.convert("RGB")
    return square(TF.pil_to_tensor(im), size), gray


class _Decoded(torch.utils.data.Dataset):
    """Decoding of one file per item, for a DataLoader whose workers decode in parallel."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return _load_one(self.paths[i], self.size)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            return None


def _identity(item):  # a module-level function: picklable for spawned workers
    return item


def _decode_all(paths: list[Path], size: int, workers: int):
    """(image, gray) or None per path, in order; `workers` processes decode in parallel (0: this one)."""
    if workers <= 0:
        return [_Decoded(paths, size)[i] for i in range(len(paths))]
    loader = torch.utils.data.DataLoader(_Decoded(paths, size), batch_size=None, num_workers=workers,
                                         collate_fn=_identity)
    return list(loader)


def load_folder(root: str | Path, image_size: int | None, channels: int | None, workers: int = 0) -> torch.Tensor:
    """[N, C, S, S] uint8. Unreadable files are skipped and counted in one warning."""
    return load_labelled_folder(root, image_size, channels, workers)[0]


def load_labelled_folder(root: str | Path, image_size: int | None, channels: int | None,
                         workers: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
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
    for p, item in zip(paths, _decode_all(paths, size, workers)):
        if item is None:
            bad.append(p)
            continue
        t, gray = item
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
