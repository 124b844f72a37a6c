"""Shared fixtures and helpers: tiny datasets written by the tests themselves (IDX, image folders, paired and
unpaired translation folders), tiny configs, and the few lines every training test repeats (train a tiny run,
read its log, load its newest checkpoint, compare weights)."""
from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import build_config

SRC = Path(__file__).resolve().parents[1] / "src"
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(SRC)}  # `python -m gankit` in a child process


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    """Write an IDX file (uint8 data) the way MNIST ships it."""
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def write_image(path: Path, arr: np.ndarray) -> Path:
    """Save a uint8 array ([H,W] grey or [H,W,3] RGB) as an image, creating the folders on the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)
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


def add_test_split(idx_dir: Path) -> Path:
    """Copy the training set of an IDX folder as its t10k test split (what the judge, the semi-supervised
    accuracy and the translation demos read)."""
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    return idx_dir


@pytest.fixture
def idx_dir_with_test(idx_dir) -> Path:
    """idx_dir with a t10k test split (a copy of its training set)."""
    return add_test_split(idx_dir)


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


@pytest.fixture
def paired(tmp_path) -> Path:
    """Side-by-side A|B pairs (A: a square's outline, B: the filled square) in train/ (12) and test/ (4)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for split, n in (("train", 12), ("test", 4)):
        for i in range(n):
            a, b = np.zeros((20, 20)), np.zeros((20, 20))
            y, x = rng.integers(2, 10, 2)
            b[y:y + 8, x:x + 8] = 255
            a[y, x:x + 8] = a[y + 7, x:x + 8] = a[y:y + 8, x] = a[y:y + 8, x + 7] = 255
            write_image(root / split / f"{i:03d}.png", np.concatenate([a, b], axis=1))
    return root


@pytest.fixture
def unpaired(tmp_path) -> Path:
    """Two unpaired domains of 16x16 grey noise, dark (A) and bright (B), 8 images each in train and test."""
    rng = np.random.default_rng(1)
    root = tmp_path / "unpaired"
    for split in ("train", "test"):
        for i in range(8):
            write_image(root / f"{split}A" / f"{i}.png", rng.integers(0, 128, (16, 16)))
            write_image(root / f"{split}B" / f"{i}.png", rng.integers(128, 256, (16, 16)))
    return root


TINY_MODEL = {"g_width": 8, "d_width": 8, "latent_dim": 8, "g_hidden": [16, 16], "d_hidden": [16],
              "attention_hidden": 8}

# `gankit train` flags that shrink an image-to-image run (16 px, width 8, one PatchGAN layer, one residual block)
TINY_I2I = ["--image-size", "16", "--batch-size", "4", "--set", "model.g_width=8", "--set", "model.d_width=8",
            "--set", "i2i.patch_layers=1", "--set", "i2i.res_blocks=1", "--checkpoint-every", "3", "--quiet"]


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
        over["sample"] = {"refine": "none"}  # the toy preset samples through MH; tests of other things draw plain
    for k, v in sections.items():
        over.setdefault(k, {}).update(v)
    return build_config(preset, overrides=[over])


def train_tiny(preset: str, out: Path, **kwargs) -> Path:
    """Train tiny_config(preset, out, **kwargs) quietly; the run folder."""
    import gankit

    return Path(gankit.train(tiny_config(preset, out, **kwargs), quiet=True)["run"])


def read_log(run: str | Path) -> list[dict]:
    """The rows of a run's log.jsonl, one per step."""
    return [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]


def newest_checkpoint(run: str | Path) -> dict:
    """The newest step checkpoint of a run, loaded."""
    from gankit.run import list_step_checkpoints, load_file

    return load_file(list_step_checkpoints(Path(run))[0])


def assert_same_weights(a: dict, b: dict, nets: tuple[str, ...] = ("G", "D")) -> None:
    """Two checkpoints hold bit-identical weights for each of `nets`."""
    for net in nets:
        differ = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
        assert not differ, f"{net}: {differ}"
