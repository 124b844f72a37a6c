from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.errors import GankitError

from .conftest import tiny_config


@pytest.fixture
def image_run(tmp_path, idx_dir):
    return Path(gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir), quiet=True)["run"])


def test_npz_images_are_uint8_nhwc(image_run, tmp_path):
    out = gankit.sample(image_run, 10, tmp_path / "s.npz")
    images = np.load(out)["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    assert images.std() > 0  # not a blank array


def test_same_seed_same_samples_other_seed_other_samples(image_run, tmp_path):
    a = np.load(gankit.sample(image_run, 8, tmp_path / "a.npz", seed=1))["images"]
    b = np.load(gankit.sample(image_run, 8, tmp_path / "b.npz", seed=1))["images"]
    c = np.load(gankit.sample(image_run, 8, tmp_path / "c.npz", seed=2))["images"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_png_grid_and_named_checkpoint(image_run, tmp_path):
    out = gankit.sample(image_run, 16, tmp_path / "g.png", checkpoint="step-000002")
    w, h = Image.open(out).size
    assert w == h == 4 * 28 + 5 * 2  # 4 x 4 grid with 2-pixel padding
    with pytest.raises(GankitError, match="checkpoint 'step-000009' not found .*available: step-000004, step-000002"):
        gankit.sample(image_run, 4, tmp_path / "x.png", checkpoint="step-000009")


def test_toy_npz_has_float_points(tmp_path):
    run = gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring"), quiet=True)["run"]
    samples = np.load(gankit.sample(run, 50, tmp_path / "p.npz"))["samples"]
    assert samples.shape == (50, 2) and samples.dtype == np.float32
    assert Image.open(gankit.sample(run, 500, tmp_path / "p.png")).size[0] > 100


def test_bad_requests(image_run, tmp_path):
    with pytest.raises(GankitError, match="must end in .png or .npz"):
        gankit.sample(image_run, 4, tmp_path / "x.jpg")
    with pytest.raises(GankitError, match="does not exist"):
        gankit.sample(tmp_path / "nope", 4, tmp_path / "x.png")
    with pytest.raises(GankitError, match="has no checkpoints"):
        (tmp_path / "empty").mkdir()
        gankit.sample(tmp_path / "empty", 4, tmp_path / "x.png")


def test_an_ensemble_of_seeds_samples_as_a_mixture(tmp_path):
    import torch

    from gankit.cli import main
    from gankit.sampling import generate

    runs = [gankit.train(tiny_config("toy", tmp_path / f"s{seed}", dataset="ring", train={"seed": seed}),
                         quiet=True)["run"] for seed in (0, 1)]
    mix = np.load(gankit.sample(runs, 400, tmp_path / "mix.npz", seed=3))["samples"]
    assert mix.shape == (400, 2)
    # each sample's member is drawn uniformly; the mixture holds exactly the members' own draws
    counts = torch.bincount(torch.randint(2, (400,), generator=torch.Generator().manual_seed(3)), minlength=2)
    assert 150 < counts[0] < 250
    members = []
    for i, run in enumerate(runs):
        G, cfg, _ = gankit.load_generator(run)
        members.append(generate(G, cfg, int(counts[i]), seed=3 * 1000 + i).numpy())
    expected = np.concatenate(members)
    assert np.allclose(np.sort(mix, axis=0), np.sort(expected, axis=0), atol=1e-5)
    assert main(["sample", *runs, "--num", "10", "--out", str(tmp_path / "m.png")]) == 0
    assert torch.equal(torch.from_numpy(mix), torch.from_numpy(np.load(gankit.sample(runs, 400, tmp_path / "again.npz",
                                                                                    seed=3))["samples"]))
