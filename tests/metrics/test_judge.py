"""The domain judge of a labelled image folder: trained on the images training reads, tested on test/."""
import numpy as np
from PIL import Image

from gankit.metrics.judge import find_judge, train_judge


def _folder(root, split, n):
    """Two classes of 16 px images: dark and bright, a little noise."""
    rng = np.random.default_rng(len(split) + n)
    for cls, level in (("dark", 40), ("bright", 210)):
        d = root / split / cls
        d.mkdir(parents=True)
        for i in range(n):
            img = np.clip(level + rng.normal(0, 10, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{i}.png")


def test_a_folder_judge_learns_the_classes_of_train_and_tests_on_test_and_is_found_again(tmp_path, monkeypatch):
    """ROOT/train/CLASS and ROOT/test/CLASS: the classes are dark and bright (not 'train' and 'test'), the test
    accuracy is measured on test/'s images, and find_judge finds the judge train_judge cached."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "faces"
    _folder(root, "train", 30)
    _folder(root, "test", 5)
    meta = train_judge(str(root), epochs=2, log=lambda m: None)
    assert meta["num_classes"] == 2 and meta["train_size"] == 60 and meta["test_size"] == 10
    assert meta["test_accuracy"] == 1.0  # dark vs bright: separable
    assert str(find_judge(str(root))) == str(meta["path"])
