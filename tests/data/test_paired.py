"""Image-to-image data: paired and unpaired folders, jitter, the demo datasets."""
import json

import numpy as np
import pytest
import torch

from gankit.data.paired import jitter, load_paired, load_unpaired
from gankit.errors import GankitError

from ..conftest import write_image


def test_paired_layouts_and_their_errors(tmp_path, paired):
    A, B = load_paired(paired, 16)
    assert A.shape == B.shape == (12, 1, 16, 16)
    # the A/ and B/ layout with the same names gives the same pairs
    for i, (a, b) in enumerate(zip(A, B)):
        write_image(tmp_path / "ab" / "A" / f"{i:02d}.png", a[0].numpy())
        write_image(tmp_path / "ab" / "B" / f"{i:02d}.png", b[0].numpy())
    A2, B2 = load_paired(tmp_path / "ab", 16)
    assert torch.equal(A2, A) and torch.equal(B2, B)
    (tmp_path / "ab" / "B" / "03.png").rename(tmp_path / "ab" / "B" / "x.png")
    with pytest.raises(GankitError, match="mismatched pair: '03' has no image in"):
        load_paired(tmp_path / "ab", 16)
    write_image(tmp_path / "bad" / "0.png", np.zeros((20, 20)))
    with pytest.raises(GankitError, match="not a side-by-side A|B pair"):
        load_paired(tmp_path / "bad", 16)
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    write_image(tmp_path / "empty" / "trainB" / "0.png", np.zeros((8, 8)))
    with pytest.raises(GankitError, match="domain A is empty"):
        load_unpaired(tmp_path / "empty", 16)


def test_jitter_moves_both_halves_of_a_pair_together():
    x = torch.rand(3, 1, 16, 16)
    out = jitter(torch.cat([x, x], 1), torch.Generator().manual_seed(0))
    assert out.shape == (3, 2, 16, 16)
    assert torch.equal(out[:, :1], out[:, 1:])
    assert not torch.allclose(out[:, :1], x)


def test_demo_datasets_from_fashion_mnist_layout(tmp_path, idx_dir_with_test):
    from gankit.translate import make_demo

    idx_dir = idx_dir_with_test

    e2f = make_demo("edges2fashion", tmp_path / "e2f", str(idx_dir), num=5, num_test=3)
    A, B = load_paired(e2f, 32)
    assert A.shape == (5, 1, 32, 32) and len(list((e2f / "test").glob("*.png"))) == 3
    t2t = make_demo("tops2trousers", tmp_path / "t2t", str(idx_dir), num=4, num_test=2)
    A, B = load_unpaired(t2t, 32)
    assert len(A) == len(B) == 4
    assert json.loads((t2t / "gankit-demo.json").read_text())["B_classes"] == [1]
    with pytest.raises(GankitError, match="not empty"):
        make_demo("tops2trousers", t2t, str(idx_dir))
