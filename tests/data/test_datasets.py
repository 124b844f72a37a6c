"""Named datasets: where they are found, how they are scaled, what a missing one says."""

import pytest
import torch
from torch.testing import assert_close

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.errors import GankitError


def test_fashion_mnist_from_data_dir_scaled_to_minus_one_one(idx_dir):
    data = load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(idx_dir)))
    assert data.x.shape == (128, 1, 28, 28) and data.x.dtype == torch.uint8  # held in memory as uint8
    assert data.labels.tolist()[:3] == [0, 1, 2]
    batch = data.batch(torch.arange(16))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    # the fixture's pixels are floor(255 * U), 0..254, and both ends occur among these 16 x 784: 0 -> -1, 254 -> 254/127.5 - 1
    assert_close(batch.min(), torch.tensor(-1.0))
    assert_close(batch.max(), torch.tensor(254 / 127.5 - 1))


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


def test_batches_of_a_dataset_held_on_the_host_reach_the_training_device():
    from gankit.data import Data

    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).view(4, 3, 2, 2)
    held = Data("t", x, device=torch.device("meta"))  # x stays here; batches go to the device
    b = held.batch(torch.tensor([2, 0]))
    assert b.device.type == "meta" and b.shape == (2, 3, 2, 2)
    local = Data("t", x).batch(torch.tensor([2, 0]))
    assert torch.equal(local, x[[2, 0]].float() / 127.5 - 1)


def test_unknown_dataset_name():
    with pytest.raises(GankitError, match="neither a known name nor a folder"):
        load_dataset(DataConfig(dataset="cifar100"))
