"""The sets `gankit eval --real/--fake` scores: a dataset name, an image folder or an .npz from
`gankit sample`, read with bounds (no pickles, declared sizes checked before reading)."""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from numpy.lib import format as npformat

from ..config import NAMED_DATASETS, DataConfig
from ..errors import GankitError

MAX_SET_BYTES = 4 << 30  # an .npz array declaring more is refused before it is read
IMAGE_LAYOUT = "uint8 N×H×W×C (C = 1 or 3), or float N×H×W×C in [-1, 1] (converted to uint8)"
NPZ_SUFFIX = ".npz"
_NPZ_HINT = "write it with `gankit sample --out FILE.npz` or np.savez(FILE, images=...)"


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
    if not np.issubdtype(a.dtype, np.floating):
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
    real = np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2 or not real or not np.isfinite(a).all():
        raise GankitError(f"'{src}': 'samples' of shape {a.shape} {a.dtype}; expected finite float N×2 points, "
                          "N >= 2 (as `gankit sample` writes for ring and grid)")
    return torch.from_numpy(a.astype(np.float32))


NPZ_KEYS = {"images": _as_images, "samples": _as_points}  # the keys `gankit sample` writes -> their reader


def _npz_array(p: Path) -> tuple[str, np.ndarray]:
    """(its key, the array) of an .npz: no pickles, and the size its header declares is checked before
    anything is read."""
    if not p.is_file():
        raise GankitError(f"'{p}' not found; give an .npz written by `gankit sample`")
    if not zipfile.is_zipfile(p):
        empty = " (an empty file)" if p.stat().st_size == 0 else ""
        raise GankitError(f"'{p}' is not an .npz (zip) archive{empty}; {_NPZ_HINT}")
    try:
        with zipfile.ZipFile(p) as zf:
            key = next((k for k in NPZ_KEYS if f"{k}.npy" in zf.namelist()), None)
            if key is None:
                raise GankitError(f"'{p}' has neither key {' nor '.join(map(repr, NPZ_KEYS))}; {_NPZ_HINT}")
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


def load_set(spec: str, num: Optional[int], data_dir: Optional[str] = None, seed: int = 0) -> tuple[torch.Tensor, dict]:
    """A set given as a dataset name, an image folder or an .npz from `gankit sample`; at most `num` of it
    (a seeded subsample). Returns (uint8 [N,C,H,W] images or float [N,2] points, a description)."""
    p = Path(spec)
    if p.suffix == NPZ_SUFFIX:
        key, a = _npz_array(p)
        x = NPZ_KEYS[key](a, spec)
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

