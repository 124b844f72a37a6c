"""Hostile or broken inputs: YAML configs and overrides (item 16), config values (17), IDX files (22).

Each must end in one clear `gankit: error:` line (a GankitError), quickly and without building anything
big, and before a run folder is created.
"""
from __future__ import annotations

import gzip
import struct
import time

import numpy as np
import pytest

from gankit.cli import main
from gankit.config import build_config, load_yaml, parse_override
from gankit.data.idx import read_idx
from gankit.errors import GankitError

from ..conftest import write_idx
from .helpers import one_error_line, yaml_bomb


# ---------------------------------------------------------------- 16. YAML
@pytest.mark.parametrize("text, why", [
    (f"bomb: {yaml_bomb()}\n", "expands to more than"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than"),
    ("x: " + "{a: " * 200 + "1" + "}" * 200 + "\n", "nested more than"),
    ("x: &loop [1, *loop]\n", "refers to a node that contains it"),
])
def test_yaml_bombs_and_deep_nesting_are_refused_while_parsing(tmp_path, text, why):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(GankitError, match=why) as e:
        load_yaml(f)
    assert time.perf_counter() - t0 < 1.0
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_plain_anchors_and_aliases_still_load(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim: {lr_g: &lr 0.001, lr_d: *lr}\nmodel: {g_hidden: &h [32, 32], d_hidden: *h}\n")
    cfg = build_config(config_file=str(f))
    assert cfg.optim.lr_d == cfg.optim.lr_g == 0.001 and cfg.model.d_hidden == [32, 32]


def test_alias_bomb_in_an_override_is_refused():
    t0 = time.perf_counter()
    with pytest.raises(GankitError, match="override 'model.g_hidden' refused: .*expands"):
        parse_override("model.g_hidden=" + yaml_bomb())
    assert time.perf_counter() - t0 < 1.0
    assert parse_override("model.g_hidden=[8, 16]") == {"model": {"g_hidden": [8, 16]}}


def test_alias_bomb_config_through_the_cli_is_one_line(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text(f"model:\n  g_hidden: {yaml_bomb(levels=7)}\n")  # its error message alone would be ~30 MB
    assert main(["train", "--config", str(f), "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys)
    assert "refused" in line and len(line) < 400
    assert not (tmp_path / "run").exists()


def test_alias_bomb_in_a_run_folders_config_yaml(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"model:\n  g_hidden: {yaml_bomb(levels=7)}\n")
    assert main(["eval", str(run)]) == 2
    assert "config.yaml" in one_error_line(capsys)


def test_non_utf8_and_oversized_config_files(tmp_path, capsys):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("train: {seed: 3}  # réglage\n".encode("latin-1"))
    with pytest.raises(GankitError, match="not UTF-8"):
        load_yaml(latin1)
    assert main(["train", "--config", str(latin1), "--out", str(tmp_path / "run")]) == 2
    assert "not UTF-8" in one_error_line(capsys)
    big = tmp_path / "big.yaml"
    big.write_text("train: {seed: 3}\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(GankitError, match="over the 1 MB limit"):
        load_yaml(big)


# ---------------------------------------------------------------- 17. values
@pytest.mark.parametrize("override", [
    "optim.lr_g=nan", "optim.lr_d=.inf", "tech.instance_noise=.nan", "train.minutes=.inf",
    "optim.beta1=5", "optim.beta2=1.0", "optim.beta1=-0.1",
    "train.seed=1e23", "train.seed=1.0e+23", "train.seed=-1", f"train.seed={2 ** 63}",
    "diagnose.window=0", "diagnose.window=-1",
    "model.latent_dim=100000000", "data.toy_size=10000000000", "model.g_width=100000",
    "model.d_hidden=[64, 1000000]", "train.batch_size=2000000",
])
def test_bad_values_name_the_key(override):
    key = override.split("=")[0]
    with pytest.raises(GankitError, match=f"'{key}'") as e:
        build_config("toy", overrides=[parse_override(override)])
    assert "\n" not in str(e.value)


def test_values_at_the_edges_of_their_ranges_pass():
    cfg = build_config("toy", overrides=[{"optim": {"beta1": 0.0, "beta2": 0.9999}, "diagnose": {"window": 1},
                                          "train": {"seed": 2 ** 63 - 1}, "model": {"latent_dim": 100_000}}])
    assert cfg.train.seed == 2 ** 63 - 1 and cfg.optim.beta1 == 0.0


def test_bad_value_fails_before_the_run_folder_exists(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "ring", "--out", str(out), "--set", "train.max_steps=1",
                 "--set", "optim.lr_g=nan"]) == 2
    assert "optim.lr_g" in one_error_line(capsys)
    assert not out.exists()


# ---------------------------------------------------------------- 22. IDX files
def _header(dims, code=0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("raw, why", [
    (b"", "header of 0 bytes"),
    (b"\x00\x00", "header of 2 bytes"),
    (b"\x00\x00\x08\x03\x00\x00", "header cut short"),
    (b"PK\x03\x04 not idx", "bad magic"),
    (_header((2 ** 31, 2 ** 31, 4)) + b"\x00" * 16, "declares shape"),  # product overflows int64 to 0
    (_header((60000, 28, 28)) + b"\x00" * 100, "truncated"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_bad_idx_files_are_one_line_errors_naming_the_file(tmp_path, raw, why, gz):
    p = tmp_path / ("x.idx.gz" if gz else "x.idx")
    p.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(GankitError, match=why) as e:
        read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)  # callers that caught ValueError still do


def test_cut_gzip_stream_is_an_error(tmp_path):
    p = write_idx(tmp_path / "x.idx.gz", np.zeros((50, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:30])
    with pytest.raises(GankitError, match="x.idx.gz"):
        read_idx(p)


def test_bad_idx_through_the_cli(tmp_path, idx_dir, capsys):
    images = idx_dir / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x80"))
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--out",
                 str(tmp_path / "run"), "--set", "train.max_steps=1"]) == 2
    assert "train-images-idx3-ubyte.gz" in one_error_line(capsys)


def test_good_idx_files_of_every_dtype_round_trip(tmp_path):
    for code, dtype in ((0x08, np.uint8), (0x0B, ">i2"), (0x0D, ">f4")):
        arr = np.arange(24).reshape(2, 3, 4).astype(dtype)
        p = tmp_path / f"{code}.idx"
        p.write_bytes(_header(arr.shape, code) + arr.tobytes())
        assert np.array_equal(read_idx(p).numpy(), arr)
