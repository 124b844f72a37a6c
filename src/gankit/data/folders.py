"""Any folder of images (recursive), decoded once into a uint8 tensor held in memory.

Unreadable files are skipped and counted in one warning. So are images of more than
$GANKIT_MAX_IMAGE_PIXELS pixels (default 64 megapixels): a tiny PNG can declare 30000 x 30000 pixels
and would take gigabytes to decode (a decompression bomb); raise the cap, e.g.
GANKIT_MAX_IMAGE_PIXELS=200000000, for genuinely huge images. 16-bit images are scaled to 8 bits
(value / 257), not clipped.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import GankitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
# what decoding a bad file may raise; DecompressionBombError (too many pixels) is no OSError
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def max_image_pixels() -> int:
    """The pixel cap: $GANKIT_MAX_IMAGE_PIXELS, else 64 megapixels."""
    raw = os.environ.get("GANKIT_MAX_IMAGE_PIXELS", "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not raw.isdigit() or int(raw) <= 0:
        raise GankitError(f"GANKIT_MAX_IMAGE_PIXELS={raw!r} is not a positive whole number of pixels; "
                          f"set it to e.g. {DEFAULT_MAX_IMAGE_PIXELS} or unset it")
    return int(raw)


def open_image(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse more than max_pixels pixels, before anything is decoded."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels  # the user raised the cap: PIL's own check must not refuse first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, against our cap
        im = Image.open(path)
    if im.width * im.height > max_pixels:
        im.close()
        raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels exceed GANKIT_MAX_IMAGE_PIXELS")
    return im


def to_8bit(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale -> 8-bit 'L', scaled by 1/257 so 65535 maps to 255."""
    if not im.mode.startswith("I"):
        return im
    a = np.clip(np.asarray(im).astype(np.int64), 0, 65535)
    return Image.fromarray(((a + 128) // 257).astype(np.uint8), mode="L")


def read_image(path: Path, mode: str, max_pixels: int) -> tuple[torch.Tensor, bool]:
    """One file -> ([C,H,W] uint8 in mode 'L' or 'RGB', whether the file was grayscale). Raises one of
    UNREADABLE for a broken or oversized file."""
    from torchvision.transforms import functional as TF

    with open_image(path, max_pixels) as im:
        im.load()
        gray = im.mode in GRAY_MODES
        return TF.pil_to_tensor(to_8bit(im).convert(mode)), gray


def warn_skipped(bad: list[tuple[Path, str]], root: Path) -> None:
    """One warning for all the files skipped: how many, and the first one with its reason."""
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s) in '{root}' (first: {bad[0][0].name}: "
                      f"{bad[0][1]})", stacklevel=3)


def why(e: Exception, max_pixels: int) -> str:
    """A short reason for a skipped file."""
    if isinstance(e, Image.DecompressionBombError):
        return f"more than GANKIT_MAX_IMAGE_PIXELS={max_pixels} pixels; raise it to read such images"
    return type(e).__name__


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def square(t: torch.Tensor, size: int) -> torch.Tensor:
    """[C,H,W] uint8 -> [C,size,size]: shorter side resized (bilinear, antialiased), then centre-cropped."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    t = TF.resize(t, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(t, [size, size])


def _load_one(path: Path, size: int, max_pixels: int) -> tuple[torch.Tensor, bool]:
    """One image -> ([3, size, size] uint8, was_grayscale)."""
    t, gray = read_image(path, "RGB", max_pixels)
    return square(t, size), gray


class _Decoded(torch.utils.data.Dataset):
    """Decoding of one file per item, for a DataLoader whose workers decode in parallel."""

    def __init__(self, paths: list[Path], size: int, max_pixels: int | None = None):
        self.paths, self.size = paths, size
        self.max_pixels = max_pixels or max_image_pixels()  # read once, here

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return _load_one(self.paths[i], self.size, self.max_pixels)
        except UNREADABLE as e:
            return why(e, self.max_pixels)  # a reason instead of an image: skipped and counted


def _identity(item):  # a module-level function: picklable for spawned workers
    return item


def _decode_all(paths: list[Path], size: int, workers: int):
    """(image, gray), or the reason it failed, per path in order; `workers` processes decode in parallel
    (0: this one)."""
    if workers <= 0:
        return [_Decoded(paths, size)[i] for i in range(len(paths))]
    loader = torch.utils.data.DataLoader(_Decoded(paths, size), batch_size=None, num_workers=workers,
                                         collate_fn=_identity)
    return list(loader)


def load_folder(root: str | Path, image_size: int | None, channels: int | None, workers: int = 0) -> torch.Tensor:
    """[N, C, S, S] uint8. Unreadable files are skipped and counted in one warning."""
    return load_labelled_folder(root, image_size, channels, workers)[0]


def load_labelled_folder(root: str | Path, image_size: int | None, channels: int | None,
                         workers: int = 0, skip: Path | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images [N,C,S,S] uint8, labels [N] from each file's first-level subfolder, and the class names
    (files directly in root form class '.'). Files under `skip` (a subfolder) are left out."""
    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"dataset '{root}' is neither a known name nor a folder; use fashion-mnist, "
                          "mnist, cifar10, ring, grid or the path of an image folder")
    paths = [p for p in list_images(root) if skip is None or skip not in p.parents]
    if not paths:
        held = f" outside its held-out {skip.name}/ subfolder" if skip is not None else ""
        raise GankitError(f"image folder '{root}' has no images{held} (.png, .jpg, .jpeg, .webp, .bmp); "
                          "point --dataset at a folder that has some")
    size = image_size or 64
    images, grays, bad, folders = [], [], [], []
    for p, item in zip(paths, _decode_all(paths, size, workers)):
        if isinstance(item, str):
            bad.append((p, item))
            continue
        t, gray = item
        images.append(t)
        grays.append(gray)
        rel = p.relative_to(root).parts
        folders.append(rel[0] if len(rel) > 1 else ".")
    warn_skipped(bad, root)
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


HELDOUT_DIR, TRAIN_DIR = "test", "train"  # ROOT/test/ is held out; with ROOT/train/ beside it, training reads that


def load_folder_splits(root: str | Path, image_size: int | None, channels: int | None, workers: int = 0,
                       heldout: bool = True) -> tuple[tuple[torch.Tensor, torch.Tensor | None], tuple | None]:
    """((images, labels) to train on, (images, labels) held out or None). ROOT/test/ is never trained on:
    training reads ROOT/train/ when it exists, else ROOT without test/. Labels come from the first-level
    subfolders of each (None with fewer than 2 classes); held-out classes are matched to the training
    classes by name (labels None when test/ has others). heldout=False leaves test/ unread."""
    root = Path(root)
    test, train = root / HELDOUT_DIR, root / TRAIN_DIR
    has_test = test.is_dir()
    train_root = train if has_test and train.is_dir() else root
    x, labels, classes = load_labelled_folder(train_root, image_size, channels, workers,
                                              skip=test if has_test and train_root == root else None)
    labels = labels if len(classes) > 1 else None  # one subfolder per class gives labels
    if not (heldout and has_test):
        return (x, labels), None
    size = image_size or x.shape[-1]
    xt, yt, test_classes = load_labelled_folder(test, size, x.shape[1], workers)
    known = labels is not None and set(test_classes) <= set(classes)
    held_labels = torch.tensor([classes.index(test_classes[k]) for k in yt.tolist()]) if known else None
    return (x, labels), (xt, held_labels)
