"""Stacked datasets: three independently drawn source images as R, G, B, labelled by their class triple."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from gankit.config import NAMED_DATASETS, STACKED_DATASETS, DataConfig
from gankit.data import load_dataset
from gankit.data.idx import read_idx
from gankit.data.stacked import STACKED_SIZE, STACKED_SOURCES


def source_indices(stacked: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """[N,3] the index of the source image each channel is (the fixture's random images are all distinct)."""
    where = {bytes(img.numpy()): i for i, img in enumerate(source)}
    assert len(where) == len(source)
    return torch.tensor([[where[bytes(ch.numpy())] for ch in img] for img in stacked])


@pytest.mark.parametrize("name", STACKED_DATASETS)
def test_channels_are_source_images_and_the_label_is_their_class_triple(idx_dir, name):
    data = load_dataset(DataConfig(dataset=name, data_dir=str(idx_dir), limit=3000), seed=1)
    assert data.x.shape == (3000, 3, 28, 28) and data.x.dtype == torch.uint8 and data.shape == (3, 28, 28)
    source = read_idx(idx_dir / "train-images-idx3-ubyte.gz")
    classes = read_idx(idx_dir / "train-labels-idx1-ubyte.gz").long()
    idx = source_indices(data.x, source)
    c = classes[idx]  # [N,3] the class of each channel
    assert torch.equal(data.labels, 100 * c[:, 0] + 10 * c[:, 1] + c[:, 2])
    assert name in NAMED_DATASETS and STACKED_SOURCES[name] in NAMED_DATASETS


def test_the_three_channels_are_drawn_independently(idx_dir):
    data = load_dataset(DataConfig(dataset="stacked-fashion-mnist", data_dir=str(idx_dir), limit=20_000), seed=0)
    idx = source_indices(data.x, read_idx(idx_dir / "train-images-idx3-ubyte.gz"))
    for a, b in ((0, 1), (0, 2), (1, 2)):  # each pair of channels: an 8x8 table of index blocks, no dependence
        table = np.zeros((8, 8))
        np.add.at(table, (idx[:, a].numpy() // 16, idx[:, b].numpy() // 16), 1)
        assert chi2_contingency(table).pvalue > 1e-3, (a, b)
    assert (idx[:, 0] == idx[:, 1]).float().mean() < 0.02  # 1/128 expected by chance
    for ch in range(3):  # each channel uniform over the 128 source images
        counts = torch.bincount(idx[:, ch], minlength=128)
        assert counts.min() > 100 and counts.max() < 220


def test_the_draw_is_fixed_by_the_seed_and_a_limit_is_a_prefix(idx_dir):
    def load(seed, limit):
        return load_dataset(DataConfig(dataset="stacked-fashion-mnist", data_dir=str(idx_dir), limit=limit), seed)

    a, b, c, short = load(3, 500), load(3, 500), load(4, 500), load(3, 50)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.x, c.x)
    assert torch.equal(short.x, a.x[:50]) and torch.equal(short.labels, a.labels[:50])


def test_by_default_128000_images_cover_the_1000_triples(idx_dir):
    data = load_dataset(DataConfig(dataset="stacked-fashion-mnist", data_dir=str(idx_dir)))
    assert len(data) == STACKED_SIZE == 128_000
    assert data.labels.unique().tolist() == list(range(1000))  # 1000 classes for the labelled modes


def test_resize_keeps_three_channels(idx_dir):
    data = load_dataset(DataConfig(dataset="stacked-fashion-mnist", data_dir=str(idx_dir), image_size=32, limit=8))
    assert data.shape == (3, 32, 32)
