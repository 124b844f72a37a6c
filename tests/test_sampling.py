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


# ---------------------------------------------------------------- bounds: --num, PNG size, memory, devices
def test_num_is_bounded(image_run, tmp_path, capsys):
    from gankit.cli import main

    from .faults.helpers import one_error_line

    for num, why in (("0", "--num must be positive, got 0"), ("-4", "--num must be positive, got -4"),
                     ("1000001", "over the limit of 1,000,000 samples")):
        assert main(["sample", str(image_run), "--num", num, "--out", str(tmp_path / "x.npz")]) == 2
        assert why in one_error_line(capsys)
    assert main(["sample", str(image_run), "--num", "1025", "--out", str(tmp_path / "x.png")]) == 2
    line = one_error_line(capsys)
    assert "at most 1,024" in line and "--out x.npz" in line
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.npz").exists()


def test_npz_is_written_chunk_by_chunk_and_holds_generates_samples(image_run, tmp_path, monkeypatch):
    from gankit import sampling

    written = []
    as_array = sampling._as_array
    monkeypatch.setattr(sampling, "_as_array", lambda x: written.append(len(x)) or as_array(x))
    out = gankit.sample(image_run, 1203, tmp_path / "big.npz", seed=5)
    assert written == [500, 500, 203]  # never more than one chunk in memory
    G, cfg, _ = gankit.load_generator(image_run)
    expected = sampling.to_uint8(gankit.generate(G, cfg, 1203, seed=5)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(np.load(out)["images"], expected)
    assert not list(tmp_path.glob(".*.tmp"))


def test_generate_leaves_the_global_rng_alone_and_repeats(image_run):
    import torch

    G, cfg, _ = gankit.load_generator(image_run)
    torch.manual_seed(123)
    a = gankit.generate(G, cfg, 700, seed=2)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)  # generate drew nothing from the caller's RNG
    assert torch.equal(gankit.generate(G, cfg, 700, seed=2, batch_size=128), a)


def test_a_missing_gpu_is_named_not_blamed_on_the_checkpoint(image_run, tmp_path, monkeypatch, capsys):
    """--device cuda on a machine without CUDA used to read 'checkpoint ... is damaged'."""
    from gankit import devices
    from gankit.cli import main

    from .faults.helpers import one_error_line

    monkeypatch.setitem(devices.AVAILABLE, "cuda", lambda: False)
    for cmd in (["sample", str(image_run), "--out", str(tmp_path / "x.npz")], ["eval", str(image_run)],
                ["classify", str(image_run), str(tmp_path / "a.png")]):
        assert main([*cmd, "--device", "cuda"]) == 2
        line = one_error_line(capsys)
        assert "CUDA GPU is not available" in line and "damaged" not in line
    assert main(["sample", str(image_run), "--out", str(tmp_path / "x.npz"), "--device", "gpu"]) == 2
    assert "unknown device 'gpu'" in one_error_line(capsys)


def test_class_and_vary_take_one_run(image_run, tmp_path):
    with pytest.raises(GankitError, match="take one run folder"):
        gankit.sample([image_run, image_run], 4, tmp_path / "x.png", klass="1")
