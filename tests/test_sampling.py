from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.errors import GankitError

from .conftest import tiny_config


@pytest.fixture
def image_run(tmp_path, idx_dir):
    return Path(gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir), quiet=True)["run"])


def test_npz_images_are_uint8_nhwc(image_run, tmp_path):
    out = gankit.sample(image_run, 10, tmp_path / "s.npz")
    images = np.load(out)["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    assert images.std() > 0  # not a blank array


def test_same_seed_same_samples_other_seed_other_samples(image_run, tmp_path):
    a = np.load(gankit.sample(image_run, 8, tmp_path / "a.npz", seed=1))["images"]
    b = np.load(gankit.sample(image_run, 8, tmp_path / "b.npz", seed=1))["images"]
    c = np.load(gankit.sample(image_run, 8, tmp_path / "c.npz", seed=2))["images"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_png_grid_and_named_checkpoint(image_run, tmp_path):
    out = gankit.sample(image_run, 16, tmp_path / "g.png", checkpoint="step-000002")
    w, h = Image.open(out).size
    assert w == h == 4 * 28 + 5 * 2  # 4 x 4 grid with 2-pixel padding
    with pytest.raises(GankitError, match="checkpoint 'step-000009' not found .*available: step-000004, step-000002"):
        gankit.sample(image_run, 4, tmp_path / "x.png", checkpoint="step-000009")


def test_toy_npz_has_float_points(tmp_path):
    run = gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring"), quiet=True)["run"]
    samples = np.load(gankit.sample(run, 50, tmp_path / "p.npz"))["samples"]
    assert samples.shape == (50, 2) and samples.dtype == np.float32
    assert Image.open(gankit.sample(run, 500, tmp_path / "p.png")).size[0] > 100


def test_bad_requests(image_run, tmp_path):
    with pytest.raises(GankitError, match="must end in .png or .npz"):
        gankit.sample(image_run, 4, tmp_path / "x.jpg")
    with pytest.raises(GankitError, match="does not exist"):
        gankit.sample(tmp_path / "nope", 4, tmp_path / "x.png")
    with pytest.raises(GankitError, match="has no checkpoints"):
        (tmp_path / "empty").mkdir()
        gankit.sample(tmp_path / "empty", 4, tmp_path / "x.png")
