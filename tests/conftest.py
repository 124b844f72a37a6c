"""Shared fixtures: tiny datasets written by the tests themselves, and tiny configs."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.config import build_config


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    """Write an IDX file (uint8 data) the way MNIST ships it."""
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    """A folder with a 128-image Fashion-MNIST-format training set (random blobs, labels 0..9)."""
    rng = np.random.default_rng(0)
    d = tmp_path / "idx"
    d.mkdir()
    images = (rng.random((128, 28, 28)) * 255).astype(np.uint8)
    write_idx(d / "train-images-idx3-ubyte.gz", images)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(128) % 10)
    return d


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """12 RGB images of mixed sizes in nested folders, plus one corrupt file."""
    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for i in range(12):
        h, w = (40, 50) if i % 2 else (64, 48)
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        folder = root / "sub" if i % 3 == 0 else root
        Image.fromarray(arr).save(folder / f"img{i}.{'png' if i % 2 else 'jpg'}")
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    return root


TINY_MODEL = {"g_width": 8, "d_width": 8, "latent_dim": 8, "g_hidden": [16, 16], "d_hidden": [16],
              "attention_hidden": 8}


def tiny_config(preset: str, out: Path, dataset: str = "fashion-mnist", data_dir: Path | None = None,
                steps: int = 4, **sections):
    """A preset shrunk to run a few steps in a second on a CPU."""
    over = {"data": {"dataset": dataset, "limit": 64}, "model": dict(TINY_MODEL),
            "train": {"batch_size": 16, "epochs": None, "minutes": None, "max_steps": steps,
                      "out": str(out), "checkpoint_every": 2, "num_samples": 16, "device": "cpu"}}
    if data_dir is not None:
        over["data"]["data_dir"] = str(data_dir)
    if dataset in ("ring", "grid"):
        over["data"].update(toy_size=256, limit=None)
        over["model"]["g_hidden"] = [16, 16]
    for k, v in sections.items():
        over.setdefault(k, {}).update(v)
    return build_config(preset, overrides=[over])
