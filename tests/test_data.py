import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_dataset, sample_toy, toy_centers
from gankit.data.idx import read_idx
from gankit.errors import GankitError

from .conftest import write_idx


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


def test_fashion_mnist_from_data_dir_scaled_to_minus_one_one(idx_dir):
    data = load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(idx_dir)))
    assert data.x.shape == (128, 1, 28, 28) and data.x.dtype == torch.uint8  # held in memory as uint8
    assert data.labels.tolist()[:3] == [0, 1, 2]
    batch = data.batch(torch.arange(16))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    assert batch.min() < -0.9 and batch.max() > 0.9


def test_gankit_data_env_and_torchvision_layout(idx_dir, tmp_path, monkeypatch):
    root = tmp_path / "tv"
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    for f in idx_dir.iterdir():
        (root / "FashionMNIST" / "raw" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("GANKIT_DATA", str(root))
    assert len(load_dataset(DataConfig(dataset="fashion-mnist", limit=10))) == 10


def test_resize_and_channels(idx_dir):
    data = load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(idx_dir), image_size=32, channels=3))
    assert data.shape == (3, 32, 32)


def test_missing_dataset_offline_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_OFFLINE", "1")
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(GankitError, match=r"mnist not found \(looked in .*empty.*--data-dir"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path / "empty")))


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.delenv("GANKIT_OFFLINE", raising=False)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(GankitError, match="the download failed"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path / "empty")))


def test_image_folder_recursive_resized_with_corrupt_file_skipped(image_folder):
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):
        data = load_dataset(DataConfig(dataset=str(image_folder), image_size=32))
    assert data.x.shape == (12, 3, 32, 32)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):  # decoded by 2 worker processes
        parallel = load_dataset(DataConfig(dataset=str(image_folder), image_size=32, workers=2))
    assert torch.equal(parallel.x, data.x)


def test_batches_of_a_dataset_held_on_the_host_reach_the_training_device():
    from gankit.data import Data

    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).view(4, 3, 2, 2)
    held = Data("t", x, device=torch.device("meta"))  # x stays here; batches go to the device
    b = held.batch(torch.tensor([2, 0]))
    assert b.device.type == "meta" and b.shape == (2, 3, 2, 2)
    local = Data("t", x).batch(torch.tensor([2, 0]))
    assert torch.equal(local, x[[2, 0]].float() / 127.5 - 1)


def test_grayscale_folder_gives_one_channel(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((20, 20), 40 * i, np.uint8), mode="L").save(tmp_path / f"{i}.png")
    data = load_dataset(DataConfig(dataset=str(tmp_path), image_size=16))
    assert data.shape == (1, 16, 16)
    assert sorted(int(v) for v in data.x[:, 0, 0, 0]) == [0, 40, 80]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(GankitError, match="has no images"):
        load_dataset(DataConfig(dataset=str(tmp_path)))


def test_unknown_dataset_name():
    with pytest.raises(GankitError, match="neither a known name nor a folder"):
        load_dataset(DataConfig(dataset="cifar100"))


def test_toy_mixtures_match_pacgan():
    ring, grid = toy_centers("ring"), toy_centers("grid")
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.ones(8))
    assert grid.shape == (25, 2) and set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    pts = sample_toy("ring", 20000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(pts, ring).min(1)
    assert 0.009 < (pts - ring[nearest.indices]).std().item() < 0.011
    assert torch.bincount(nearest.indices, minlength=8).min() > 2000  # every mode used


def test_toy_dataset_is_reproducible():
    a = load_dataset(DataConfig(dataset="grid", toy_size=100), seed=3)
    b = load_dataset(DataConfig(dataset="grid", toy_size=100), seed=3)
    assert a.shape == (2,) and torch.equal(a.x, b.x)
