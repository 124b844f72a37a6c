"""The 2-D toy mixtures (ring and grid)."""

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_dataset, sample_toy, toy_centers


def test_toy_mixtures_match_pacgan():
    ring, grid = toy_centers("ring"), toy_centers("grid")
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.ones(8))
    assert grid.shape == (25, 2) and set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    pts = sample_toy("ring", 20000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(pts, ring).min(1)
    # toy_std('ring') = 0.01 (PacGAN's); the 2 x 20000 seeded draws of N(0, 0.01^2) have this sample std
    assert (pts - ring[nearest.indices]).std().item() == pytest.approx(0.0099506, rel=1e-4)
    # every mode used, each about 20000 / 8 = 2500 times (the seeded uniform choice of the centre)
    assert torch.bincount(nearest.indices, minlength=8).tolist() == [2504, 2546, 2465, 2552, 2480, 2500, 2486, 2467]


def test_toy_dataset_is_reproducible():
    a = load_dataset(DataConfig(dataset="grid", toy_size=100), seed=3)
    b = load_dataset(DataConfig(dataset="grid", toy_size=100), seed=3)
    assert a.shape == (2,) and torch.equal(a.x, b.x)
