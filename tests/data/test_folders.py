"""Image folders as datasets."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.errors import GankitError


def test_image_folder_recursive_resized_with_corrupt_file_skipped(image_folder):
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):
        data = load_dataset(DataConfig(dataset=str(image_folder), image_size=32))
    assert data.x.shape == (12, 3, 32, 32)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):  # decoded by 2 worker processes
        parallel = load_dataset(DataConfig(dataset=str(image_folder), image_size=32, workers=2))
    assert torch.equal(parallel.x, data.x)


def test_grayscale_folder_gives_one_channel(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((20, 20), 40 * i, np.uint8), mode="L").save(tmp_path / f"{i}.png")
    data = load_dataset(DataConfig(dataset=str(tmp_path), image_size=16))
    assert data.shape == (1, 16, 16)
    assert sorted(int(v) for v in data.x[:, 0, 0, 0]) == [0, 40, 80]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(GankitError, match="has no images"):
        load_dataset(DataConfig(dataset=str(tmp_path)))
