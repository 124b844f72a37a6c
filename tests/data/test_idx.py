"""IDX files (the MNIST format)."""

import numpy as np
import pytest
import torch

from gankit.data.idx import read_idx

from ..conftest import write_idx


def test_idx_round_trip_gz_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (True, False):
        p = write_idx(tmp_path / f"a{gz}.idx{'.gz' if gz else ''}", arr, gz=gz)
        assert torch.equal(read_idx(p), torch.from_numpy(arr))


def test_truncated_idx_is_a_clear_error(tmp_path):
    p = write_idx(tmp_path / "x", np.zeros((10, 28, 28), np.uint8), gz=False)
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)
