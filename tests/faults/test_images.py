"""Images users hand us: decompression bombs and 16-bit PNGs in every folder reader (item 20), and the
sets of `gankit eval --real/--fake` (item 19)."""
from __future__ import annotations

import io
import re
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.data.paired import load_paired, load_unpaired
from gankit.errors import GankitError
from gankit.metrics import evaluate
from gankit.metrics.features import Extractor

from .helpers import bomb_png, one_error_line


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _noise(seed, shape=(16, 16)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ---------------------------------------------------------------- 20. decompression bombs, 16-bit
def test_bomb_in_an_image_folder_is_skipped_and_counted(tmp_path, bomb):
    for i in range(3):
        _png(tmp_path / "imgs" / f"{i}.png", _noise(i))
    (tmp_path / "imgs" / "bomb.png").write_bytes(bomb.read_bytes())
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file.*bomb.png.*GANKIT_MAX_IMAGE_PIXELS"):
        data = load_dataset(DataConfig(dataset=str(tmp_path / "imgs"), image_size=16))
    assert len(data) == 3


def test_pixel_cap_comes_from_the_environment(tmp_path, monkeypatch):
    _png(tmp_path / "small.png", _noise(0, (16, 16)))
    _png(tmp_path / "large.png", _noise(1, (40, 40)))
    monkeypatch.setenv("GANKIT_MAX_IMAGE_PIXELS", "1000")
    with pytest.warns(UserWarning, match="large.png: more than GANKIT_MAX_IMAGE_PIXELS=1000"):
        assert len(load_dataset(DataConfig(dataset=str(tmp_path), image_size=16))) == 1
    monkeypatch.setenv("GANKIT_MAX_IMAGE_PIXELS", "2000")
    assert len(load_dataset(DataConfig(dataset=str(tmp_path), image_size=16))) == 2
    monkeypatch.setenv("GANKIT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(GankitError, match="GANKIT_MAX_IMAGE_PIXELS"):
        load_dataset(DataConfig(dataset=str(tmp_path), image_size=16))


def test_bombs_in_paired_and_unpaired_folders_are_skipped(tmp_path, bomb):
    for i in range(3):  # A/ and B/ layout: the pair with a bomb on one side goes
        _png(tmp_path / "ab" / "A" / f"{i}.png", _noise(i))
        _png(tmp_path / "ab" / "B" / f"{i}.png", _noise(10 + i))
    (tmp_path / "ab" / "B" / "1.png").write_bytes(bomb.read_bytes())
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        A, B = load_paired(tmp_path / "ab", 16)
    assert len(A) == len(B) == 2 and torch.equal(A[1, 0], torch.from_numpy(_noise(2)))
    for i in range(2):  # side-by-side A|B images
        _png(tmp_path / "sbs" / f"{i}.png", _noise(i, (16, 32)))
    (tmp_path / "sbs" / "0bomb.png").write_bytes(bomb.read_bytes())
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        assert len(load_paired(tmp_path / "sbs", 16)[0]) == 2
    for d in ("A", "B"):  # unpaired: the bomb, first in its folder, is skipped
        for i in range(2):
            _png(tmp_path / "un" / f"train{d}" / f"{i}.png", _noise(i))
    (tmp_path / "un" / "trainA" / "0bomb.png").write_bytes(bomb.read_bytes())
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        A, B = load_unpaired(tmp_path / "un", 16)
    assert len(A) == len(B) == 2


def test_only_bombs_is_a_clear_error(tmp_path, bomb):
    for d in ("A", "B"):
        (tmp_path / f"train{d}").mkdir()
        (tmp_path / f"train{d}" / "x.png").write_bytes(bomb.read_bytes())
    with pytest.warns(UserWarning), pytest.raises(GankitError, match="none of the image files"):
        load_unpaired(tmp_path, 16)


def _gradient16(path):
    """A 64 x 64 16-bit grayscale PNG running through the whole 0..65535 range."""
    values = (np.arange(64 * 64, dtype=np.uint32) * 65535 // (64 * 64 - 1)).reshape(64, 64).astype(np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    return torch.from_numpy(np.round(values / 257).astype(np.uint8))


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    expected = _gradient16(tmp_path / "g.png")
    assert expected.max() == 255 and len(expected.unique()) == 256  # the whole 8-bit range, evenly
    data = load_dataset(DataConfig(dataset=str(tmp_path), image_size=64))
    assert data.shape == (1, 64, 64)
    assert torch.equal(data.x[0, 0], expected)
    (tmp_path / "un" / "trainA").mkdir(parents=True)
    (tmp_path / "un" / "trainB").mkdir()
    _gradient16(tmp_path / "un" / "trainA" / "g.png")
    _gradient16(tmp_path / "un" / "trainB" / "g.png")
    A, _ = load_unpaired(tmp_path / "un", 64)
    assert A.shape == (1, 1, 64, 64) and torch.equal(A[0, 0], expected)


# ---------------------------------------------------------------- 19. eval --real/--fake sets
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _eval_fake(tmp_path, fake, capsys) -> str:
    assert main(["eval", "--real", str(tmp_path / "never-read.npz"), "--fake", fake]) == 2
    return one_error_line(capsys)


@pytest.mark.parametrize("array, why", [
    (np.zeros((4, 3, 8, 8), np.uint8), "channels-first"),
    (np.zeros((4, 8, 8), np.uint8), "shape"),
    (np.zeros((4, 8, 8, 5), np.uint8), "5 channels"),
    (np.full((4, 8, 8, 1), np.nan, np.float32), "NaN"),
    (np.zeros((1, 8, 8, 3), np.uint8), "at least 2"),
    (np.zeros((0, 8, 8, 3), np.uint8), "at least 2"),
    (np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 1)), "outside \\[-1, 1\\]"),
    (np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)), "dtype int64"),
])
def test_bad_image_arrays_name_the_expected_layout(tmp_path, capsys, array, why):
    line = _eval_fake(tmp_path, _npz(tmp_path / "f.npz", images=array), capsys)
    assert re.search(why, line) and "uint8 N×H×W×C" in line


@pytest.mark.parametrize("content, why", [
    (b"", "not an .npz .*empty"),
    (b"just some text", "not an .npz"),
    (np.zeros(3).tobytes(), "not an .npz"),
])
def test_files_that_are_not_npz(tmp_path, capsys, content, why):
    (tmp_path / "f.npz").write_bytes(content)
    assert re.search(why, _eval_fake(tmp_path, str(tmp_path / "f.npz"), capsys))


def test_pickles_and_oversized_headers_are_refused_unread(tmp_path, capsys):
    objects = np.array([{"a": 1}, None], dtype=object)
    assert "Python objects" in _eval_fake(tmp_path, _npz(tmp_path / "o.npz", images=objects), capsys)
    header = io.BytesIO()  # a 12-byte member that declares 3 TB of images
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                   "shape": (10 ** 6, 1000, 1000, 3)})
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as zf:
        zf.writestr("images.npy", header.getvalue() + b"\x00" * 12)
    assert "save a subsample" in _eval_fake(tmp_path, str(tmp_path / "h.npz"), capsys)


def test_float_images_in_minus_one_one_are_converted_explicitly(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (5, 8, 8, 3))
    images, desc = evaluate.load_set(_npz(tmp_path / "f.npz", images=x), None)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 8, 8) and desc["n"] == 5
    assert torch.equal(images.permute(0, 2, 3, 1), torch.from_numpy(np.round((x + 1) * 127.5).astype(np.uint8)))


def test_image_folder_sets(tmp_path, bomb, capsys):
    (tmp_path / "one").mkdir()
    _png(tmp_path / "one" / "a.png", _noise(0))
    assert "at least 2" in _eval_fake(tmp_path, str(tmp_path / "one"), capsys)
    (tmp_path / "one" / "0bomb.png").write_bytes(bomb.read_bytes())  # first in order: skipped, not fatal
    _png(tmp_path / "one" / "b.png", _noise(1))
    with pytest.warns(UserWarning, match="skipped 1"):
        x, _ = evaluate.load_set(str(tmp_path / "one"), None)
    assert x.shape == (2, 1, 16, 16)


def _fake_extractor(*args, **kwargs):
    rng = np.random.default_rng(0)
    return Extractor("test", lambda x: (rng.normal(size=(len(x), 4)), np.full((len(x), 2), 0.5)), {})


@pytest.mark.parametrize("n, warns", [(64, True), (2048, False)])
def test_fid_on_few_samples_warns_that_it_is_biased(tmp_path, monkeypatch, n, warns):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluate, "choose_extractor", _fake_extractor)
    sets = [_npz(tmp_path / f"{k}.npz", images=np.random.default_rng(k).integers(0, 256, (n, 4, 4, 1), np.uint8))
            for k in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate.evaluate_sets(sets[0], sets[1], ["fid"], num=n)
    biased = [w for w in caught if "biased" in str(w.message)]
    assert len(biased) == (1 if warns else 0) and np.isfinite(result["metrics"]["fid"])
    if warns:
        assert f"FID on {n} samples" in str(biased[0].message)
