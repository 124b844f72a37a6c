"""Image-to-image datasets in the layouts users already have.

Paired (Pix2Pix): a folder of side-by-side A|B images (each twice as wide as high), or a folder with
`A/` and `B/` holding images of the same names; either directly or under `train/` (and `test/` or
`val/` for held-out pairs). Unpaired (CycleGAN): `trainA/`, `trainB/` (and `testA/`, `testB/`).
Everything is decoded once into uint8 tensors of size x size; random jitter (resize to 286/256 of the
size, random crop back) and horizontal flips are applied per batch, as in both papers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import GankitError
from .folders import list_images, square as _square


def _read(path: Path, channels: int) -> Tensor:
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as im:
            return TF.pil_to_tensor(im.convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise GankitError(f"'{path}' is not a readable image ({e.__class__.__name__}); remove or replace it") from None


def _split_dir(root: Path, split: str) -> Optional[Path]:
    names = ("train",) if split == "train" else ("test", "val")
    for n in names:
        if (root / n).is_dir():
            return root / n
    return root if split == "train" else None


def _channels(paths: list[Path], channels: Optional[int]) -> int:
    if channels:
        return channels
    with Image.open(paths[0]) as im:
        return 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def load_paired(root: str | Path, size: int, channels: Optional[int] = None,
                split: str = "train") -> tuple[Tensor, Tensor]:
    """(A, B) uint8 [N,C,size,size] of a paired dataset; clear errors for a mismatched or empty set."""
    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"paired dataset '{root}' is not a folder; give a folder of A|B images or with A/ and B/")
    base = _split_dir(root, split)
    if base is None:
        raise GankitError(f"'{root}' has no test/ or val/ folder of held-out pairs")
    if (base / "A").is_dir() and (base / "B").is_dir():
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
        c = _channels([a_files[keys[0]]], channels)
        A = torch.stack([_square(_read(a_files[k], c), size) for k in keys])
        B = torch.stack([_square(_read(b_files[k], c), size) for k in keys])
        return A, B
    files = [p for p in list_images(base) if p.parent == base]
    if not files:
        raise GankitError(f"'{base}' holds no side-by-side A|B images (and no A/ and B/ folders)")
    c = _channels(files, channels)
    As, Bs = [], []
    for p in files:
        t = _read(p, c)
        h, w = t.shape[1:]
        if abs(w - 2 * h) > 1:
            raise GankitError(f"'{p.name}' is {w}x{h}, not a side-by-side A|B pair (twice as wide as high)")
        As.append(_square(t[:, :, : w // 2], size))
        Bs.append(_square(t[:, :, w // 2:], size))
    return torch.stack(As), torch.stack(Bs)


def load_unpaired(root: str | Path, size: int, channels: Optional[int] = None,
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
        sets.append(files)
    c = _channels(sets[0], channels)
    return tuple(torch.stack([_square(_read(p, c), size) for p in files]) for files in sets)


def jitter(x: Tensor, generator: Optional[torch.Generator] = None, flip: bool = True) -> Tensor:
    """Random jitter as in Pix2Pix/CycleGAN: resize to 286/256 of the size, crop a random size x size
    window, flip left-right with probability 1/2. x: [N,C,S,S] float; pairs stacked along channels get the
    same jitter (call it on torch.cat([A, B], 1))."""
    n, _, s, _ = x.shape
    big = int(round(s * 286 / 256))
    up = F.interpolate(x, size=(big, big), mode="bilinear", align_corners=False)
    offs = torch.randint(0, big - s + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([up[i, :, oy:oy + s, ox:ox + s] for i, (oy, ox) in enumerate(offs.tolist())])
    if flip:
        out = torch.where(flips.to(out.device).view(n, 1, 1, 1), out.flip(3), out)
    return out
