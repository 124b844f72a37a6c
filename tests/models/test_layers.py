"""Building blocks of gankit.models.layers: the resolution plan, spatial dropout, minibatch layers."""

import pytest
import torch
from torch.testing import assert_close

from gankit.errors import GankitError
from gankit.models.layers import SpatialDropout, plan_resolution


def test_resolution_plan():
    assert [plan_resolution(s) for s in (28, 32, 64, 48, 128)] == [(7, 2), (4, 3), (4, 4), (6, 3), (4, 5)]
    with pytest.raises(GankitError, match="not supported"):
        plan_resolution(30)


def test_spatial_dropout_drops_whole_maps():
    x = torch.ones(8, 16, 5, 5)
    y = SpatialDropout(0.5)(x)
    per_map = y.flatten(2)
    assert torch.all((per_map == 0).all(-1) | (per_map == 2.0).all(-1))


def test_minibatch_std_and_discrimination_layers():
    from gankit.models.layers import MinibatchDiscrimination, MinibatchStd

    x = torch.tensor([[0.0, 2.0], [2.0, 4.0]])
    out = MinibatchStd()(x)
    assert_close(out[:, 2], torch.tensor([1.0, 1.0]))  # std of each feature is 1, averaged
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(3, kernels=5)
    same = mbd(torch.ones(4, 3))
    assert same.shape == (4, 8)
    assert_close(same[:, 3:], torch.full((4, 5), 3.0))  # identical samples: each sees N-1 = 3 close neighbours
    apart = mbd(torch.randn(4, 3) * 100)[:, 3:]
    # samples ~100 apart are ~100s apart in every 16-dim kernel projection (L1): each exp(-distance) term is 0
    assert_close(apart, torch.zeros(4, 5), rtol=0, atol=1e-6)
