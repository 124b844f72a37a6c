"""MNIST-format IDX files (optionally gzipped), e.g. Fashion-MNIST and MNIST."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read one IDX file into a tensor of its stored shape; raise ValueError if malformed."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset < count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: expected {count} values of shape {dims}")
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims)
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("=")).copy())


def find_idx_pair(dirs: list[Path], split: str = "train") -> tuple[Path, Path] | None:
    """First folder holding both `<split>-images-idx3-ubyte[.gz]` and the matching labels file."""
    for d in dirs:
        for suffix in ("", ".gz"):
            images = d / f"{split}-images-idx3-ubyte{suffix}"
            labels = d / f"{split}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None
