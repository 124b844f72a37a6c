"""MNIST-format IDX files (optionally gzipped), e.g. Fashion-MNIST and MNIST.

The header's dimensions are multiplied as Python ints and checked against the bytes the file really
holds before anything is allocated, so a corrupt or hostile header cannot overflow or exhaust memory.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 8 << 30  # refuse headers declaring more data than any real IDX dataset holds
_CHUNK = 16 << 20


class IdxError(GankitError, ValueError):
    """A malformed IDX file: a one-line GankitError (and a ValueError, for callers that catch those)."""


def _bad(path: Path, problem: str) -> IdxError:
    return IdxError(f"'{path}' is not a valid IDX file ({problem}); replace it with a fresh copy "
                    "(delete it and download again)")


def _header(f, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise _bad(path, "bad magic number" if len(magic) == 4 else f"header of {len(magic)} bytes")
    ndim = magic[3]
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise _bad(path, f"header cut short: {ndim} dimensions need {4 * ndim} bytes, found {len(raw)}")
    return np.dtype(_DTYPES[magic[2]]), struct.unpack(f">{ndim}I", raw)


def _read_exact(f, nbytes: int, path: Path, dims: tuple[int, ...]) -> bytes:
    """Exactly nbytes, read in chunks: a short file fails without allocating what its header claims."""
    chunks, got = [], 0
    while got < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - got))
        if not chunk:
            raise IdxError(f"'{path}' is truncated: its header declares shape {dims} ({nbytes} bytes of "
                           f"data) but it holds {got}; replace it with a fresh copy")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_idx(path: str | Path) -> torch.Tensor:
    """Read one IDX file into a tensor of its stored shape; raise IdxError (a ValueError) if malformed."""
    path = Path(path)
    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            dtype, dims = _header(f, path)
            nbytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
            offset = 4 + 4 * len(dims)
            if nbytes > MAX_IDX_BYTES:
                raise _bad(path, f"its header declares shape {dims}, {nbytes} bytes")
            if not gz and path.stat().st_size - offset < nbytes:
                raise IdxError(f"'{path}' is truncated: its header declares shape {dims} ({nbytes} bytes of "
                               f"data) but it holds {path.stat().st_size - offset}; replace it with a fresh copy")
            raw = _read_exact(f, nbytes, path, dims)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _bad(path, f"broken gzip stream: {e}") from None
    arr = np.frombuffer(raw, dtype=dtype).reshape(dims)
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))


def find_idx_pair(dirs: list[Path], split: str = "train") -> tuple[Path, Path] | None:
    """First folder holding both `<split>-images-idx3-ubyte[.gz]` and the matching labels file."""
    for d in dirs:
        for suffix in ("", ".gz"):
            images = d / f"{split}-images-idx3-ubyte{suffix}"
            labels = d / f"{split}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None
