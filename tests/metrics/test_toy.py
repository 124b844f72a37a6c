import math

import torch

from gankit.data import sample_toy, toy_centers
from gankit.metrics import toy_modes


def test_perfect_samples_capture_every_mode():
    for name, k in (("ring", 8), ("grid", 25)):
        m = toy_modes(sample_toy(name, 2500, torch.Generator().manual_seed(0)), name)
        # a 2-D Gaussian puts 1 - exp(-9/2) = 98.89% of its mass within 3 std of its centre
        assert m["modes"] == k and abs(m["high_quality"] - 98.89) < 0.6 and m["reverse_kl"] < 0.02


def test_collapsed_samples():
    pts = toy_centers("grid")[3].repeat(2500, 1)
    m = toy_modes(pts, "grid")
    assert m["modes"] == 1 and m["high_quality"] == 100.0
    assert abs(m["reverse_kl"] - math.log(25)) < 1e-9  # KL(one mode || uniform over 25) = log 25


def test_far_samples_are_low_quality():
    m = toy_modes(torch.full((100, 2), 0.5), "ring")  # between modes
    assert m["modes"] == 0 and m["high_quality"] == 0.0 and m["reverse_kl"] == math.inf
