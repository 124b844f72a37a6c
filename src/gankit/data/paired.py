"""Image-to-image datasets in the layouts users already have.

Paired (Pix2Pix): a folder of side-by-side A|B images (each twice as wide as high), or a folder with
`A/` and `B/` holding images of the same names; either directly or under `train/` (and `test/` or
`val/` for held-out pairs). Unpaired (CycleGAN): `trainA/`, `trainB/` (and `testA/`, `testB/`).
Everything is decoded once into uint8 tensors of size x size; random jitter (resize to 286/256 of the
size, random crop back) and horizontal flips are applied per batch, as in both papers. Unreadable
images, and images over $GANKIT_MAX_IMAGE_PIXELS pixels (see gankit.data.folders), are skipped (a pair
with either side unreadable is skipped whole) and counted in one warning.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..errors import GankitError
from .folders import (
    GRAY_MODES,
    UNREADABLE,
    list_images,
    max_image_pixels,
    open_image,
    read_image,
    warn_skipped,
    why,
)
from .folders import square as _square


class _Reader:
    """Reads images as [C,H,W] uint8, remembering the files it could not read (and why)."""

    def __init__(self, channels: int):
        self.mode = "L" if channels == 1 else "RGB"
        self.max_pixels = max_image_pixels()
        self.bad: list[tuple[Path, str]] = []

    def __call__(self, path: Path) -> Tensor | None:
        try:
            return read_image(path, self.mode, self.max_pixels)[0]
        except UNREADABLE as e:
            self.bad.append((path, why(e, self.max_pixels)))
            return None

    def done(self, images: list, root: Path) -> Tensor:
        """Stack what was read; warn about what was skipped; an error when nothing was readable."""
        warn_skipped(self.bad, root)
        if not images:
            raise GankitError(f"none of the image files in '{root}' could be read ({len(self.bad)} skipped); "
                              "check the files")
        return torch.stack(images)


def _split_dir(root: Path, split: str) -> Path | None:
    names = ("train",) if split == "train" else ("test", "val")
    for n in names:
        if (root / n).is_dir():
            return root / n
    return root if split == "train" else None


def _channels(paths: list[Path], channels: int | None) -> int:
    """The channels asked for, else 1 if the first readable file is grayscale, else 3."""
    if channels:
        return channels
    cap = max_image_pixels()
    for p in paths:
        try:
            with open_image(p, cap) as im:
                return 1 if im.mode in GRAY_MODES else 3
        except UNREADABLE:
            continue
    return 3  # nothing readable: the loaders say so


def _folder_pairs(base: Path, size: int, channels: int | None) -> tuple[Tensor, Tensor]:
    """A/ and B/ folders holding images of the same names."""
    a_files = {p.relative_to(base / "A").with_suffix("").as_posix(): p for p in list_images(base / "A")}
    b_files = {p.relative_to(base / "B").with_suffix("").as_posix(): p for p in list_images(base / "B")}
    missing = sorted(set(a_files) ^ set(b_files))
    if missing:
        side = "B" if missing[0] in a_files else "A"
        raise GankitError(f"mismatched pair: '{missing[0]}' has no image in {base / side} "
                          f"({len(missing)} unmatched in all); A/ and B/ need images of the same names")
    if not a_files:
        raise GankitError(f"'{base}/A' and '{base}/B' hold no images")
    keys = sorted(a_files)
    read = _Reader(_channels([a_files[k] for k in keys], channels))
    As, Bs = [], []
    for k in keys:
        a, b = read(a_files[k]), read(b_files[k])
        if a is not None and b is not None:  # a pair with an unreadable side is skipped whole
            As.append(_square(a, size))
            Bs.append(_square(b, size))
    return read.done(As, base), torch.stack(Bs)


def _side_by_side(base: Path, size: int, channels: int | None) -> tuple[Tensor, Tensor]:
    """A folder of A|B images, each twice as wide as high."""
    files = [p for p in list_images(base) if p.parent == base]
    if not files:
        raise GankitError(f"'{base}' holds no side-by-side A|B images (and no A/ and B/ folders)")
    read = _Reader(_channels(files, channels))
    As, Bs = [], []
    for p in files:
        t = read(p)
        if t is None:
            continue
        h, w = t.shape[1:]
        if abs(w - 2 * h) > 1:
            raise GankitError(f"'{p.name}' is {w}x{h}, not a side-by-side A|B pair (twice as wide as high)")
        As.append(_square(t[:, :, : w // 2], size))
        Bs.append(_square(t[:, :, w // 2:], size))
    return read.done(As, base), torch.stack(Bs)


def load_paired(root: str | Path, size: int, channels: int | None = None,
                split: str = "train") -> tuple[Tensor, Tensor]:
    """(A, B) uint8 [N,C,size,size] of a paired dataset; clear errors for a mismatched or empty set."""
    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"paired dataset '{root}' is not a folder; give a folder of A|B images or with A/ and B/")
    base = _split_dir(root, split)
    if base is None:
        raise GankitError(f"'{root}' has no test/ or val/ folder of held-out pairs")
    if (base / "A").is_dir() and (base / "B").is_dir():
        return _folder_pairs(base, size, channels)
    return _side_by_side(base, size, channels)


def load_unpaired(root: str | Path, size: int, channels: int | None = None,
                  split: str = "train") -> tuple[Tensor, Tensor]:
    """(A, B) uint8 image sets of CycleGAN's trainA/trainB (or testA/testB) folders."""
    root = Path(root)
    sets = []
    for d in ("A", "B"):
        folder = root / f"{split}{d}"
        if not folder.is_dir():
            raise GankitError(f"'{folder}' not found; an unpaired dataset has {split}A/ and {split}B/ folders")
        files = list_images(folder)
        if not files:
            raise GankitError(f"domain {d} is empty: '{folder}' holds no images")
        sets.append((folder, files))
    c = _channels(sets[0][1], channels)
    out = []
    for folder, files in sets:
        read = _Reader(c)
        out.append(read.done([_square(t, size) for t in map(read, files) if t is not None], folder))
    return out[0], out[1]


def jitter(x: Tensor, generator: torch.Generator | None = None, flip: bool = True) -> Tensor:
    """Random jitter as in Pix2Pix/CycleGAN: resize to 286/256 of the size, crop a random size x size
    window, flip left-right with probability 1/2. x: [N,C,S,S] float; pairs stacked along channels get the
    same jitter (call it on torch.cat([A, B], 1))."""
    n, _, s, _ = x.shape
    big = round(s * 286 / 256)
    up = F.interpolate(x, size=(big, big), mode="bilinear", align_corners=False)
    offs = torch.randint(0, big - s + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([up[i, :, oy:oy + s, ox:ox + s] for i, (oy, ox) in enumerate(offs.tolist())])
    if flip:
        out = torch.where(flips.to(out.device).view(n, 1, 1, 1), out.flip(3), out)
    return out


def load_translation_data(cfg: Config, split: str, paired: bool) -> tuple[Tensor, Tensor]:
    """The two image sets of an image-to-image run (paired: A|B pairs; else trainA/ and trainB/ folders)."""
    load = load_paired if paired else load_unpaired
    return load(cfg.data.dataset, cfg.data.image_size or 256, cfg.data.channels, split)
