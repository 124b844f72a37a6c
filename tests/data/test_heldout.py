"""Held-out real images for D's test accuracy: data.holdout, an image folder's test/ subfolder, the named
datasets' test splits. What is held out is never trained on."""
import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import holdout_split, load_dataset, load_splits
from gankit.errors import GankitError
from gankit.training import make_recipe

from ..conftest import tiny_config, write_image


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r) for r in x.flatten(1).numpy()}


@pytest.mark.parametrize("n, share", [(10, 0.1), (128, 0.25), (1000, 0.5), (3, 0.01)])
def test_holdout_indices_are_disjoint_complete_and_fixed_by_the_seed(n, share):
    train, held = holdout_split(n, share, seed=3)
    assert set(train.tolist()).isdisjoint(held.tolist())
    assert sorted(train.tolist() + held.tolist()) == list(range(n))
    assert len(held) == min(n - 1, max(1, round(share * n)))
    again = holdout_split(n, share, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(held, again[1])
    if n >= 128:
        assert not torch.equal(held, holdout_split(n, share, seed=4)[1])


def test_the_held_out_images_are_never_trained_on(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, data={"holdout": 0.25})
    recipe = make_recipe(cfg)
    trained, held = _rows(recipe.data.x.cpu()), _rows(recipe.heldout.x)
    assert len(held) == 16 and len(trained) == 48 and trained.isdisjoint(held)  # 25% of --limit 64
    seen = set()  # every image of every batch of two epochs comes from the training part
    for epoch in range(2):
        for i in range(recipe.steps_per_epoch):
            seen |= _rows(((recipe.batch(epoch, i).real + 1) * 127.5).round().to(torch.uint8).cpu())
    assert seen <= trained and seen.isdisjoint(held)
    # what evaluation compares with (load_dataset) is the same training part
    assert _rows(load_dataset(cfg.data, cfg.train.seed).x) == trained


def test_a_named_dataset_holds_out_its_test_split(idx_dir_with_test):
    cfg = DataConfig(dataset="fashion-mnist", data_dir=str(idx_dir_with_test), limit=32, image_size=16)
    train, held = load_splits(cfg)
    assert len(train) == 32 and len(held) == 128 and held.shape == (1, 16, 16) and held.labels is not None


def test_a_missing_test_split_warns_and_training_data_stays(idx_dir):
    with pytest.warns(UserWarning, match="no held-out images.*t10k.*data.holdout=0.1"):
        train, held = load_splits(DataConfig(dataset="fashion-mnist", data_dir=str(idx_dir)))
    assert held is None and len(train) == 128


def _folder(root, layout: dict[str, int]):
    rng = np.random.default_rng(0)
    for sub, n in layout.items():
        for i in range(n):
            write_image(root / sub / f"{i}.png", rng.integers(0, 256, (8, 8, 3)))
    return root


def test_an_image_folders_test_subfolder_is_held_out(tmp_path):
    root = _folder(tmp_path / "imgs", {"cats": 6, "dogs": 6, "test/cats": 2, "test/dogs": 3})
    train, held = load_splits(DataConfig(dataset=str(root), image_size=8))
    assert len(train) == 12 and len(held) == 5 and _rows(train.x).isdisjoint(_rows(held.x))
    assert train.labels.tolist() == [0] * 6 + [1] * 6 and held.labels.tolist() == [0, 0, 1, 1, 1]  # classes by name
    assert len(load_dataset(DataConfig(dataset=str(root), image_size=8))) == 12  # "test" is not a class


def test_train_and_test_subfolders_and_unknown_test_classes(tmp_path):
    root = _folder(tmp_path / "imgs", {"train/a": 4, "train/b": 4, "test/c": 2})
    train, held = load_splits(DataConfig(dataset=str(root), image_size=8))
    assert len(train) == 8 and train.labels.tolist() == [0] * 4 + [1] * 4
    assert len(held) == 2 and held.labels is None  # class c is not one D knows
    only = _folder(tmp_path / "only", {"test": 3})
    with pytest.raises(GankitError, match="no images outside its held-out test/ subfolder"):
        load_splits(DataConfig(dataset=str(only), image_size=8))


def test_holdout_bounds_are_checked():
    with pytest.raises(GankitError, match="data.holdout"):
        tiny_config("dcgan", "unused", data={"holdout": 0.9})
