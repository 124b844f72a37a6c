import json
from pathlib import Path

import torch

import gankit
from gankit.cli import main
from gankit.config import build_config
from gankit.observe.diagnostics import Diagnostics, diversity

from .conftest import tiny_config


def kinds(run) -> list[str]:
    path = Path(run) / "diagnostics.jsonl"
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()] if path.exists() else []


def test_discriminator_overpowering_is_reported(tmp_path, idx_dir):
    # a frozen G's near-blank images against random blobs: D wins at once and D(G(z)) falls to ~0
    cfg = tiny_config("gan-mlp", tmp_path / "run", data_dir=idx_dir, steps=40,
                      optim={"lr_g": 1e-12, "lr_d": 5e-3}, diagnose={"window": 10, "d_fake_floor": 0.05})
    summary = gankit.train(cfg, quiet=True)
    assert "d_overpowering" in kinds(summary["run"]) and summary["warnings"] >= 1
    rows = [json.loads(line) for line in (Path(summary["run"]) / "diagnostics.jsonl").read_text().splitlines()]
    message = next(r["message"] for r in rows if r["kind"] == "d_overpowering")
    assert "mean D(G(z))" in message and "Try" in message


def test_vanishing_gradient_is_reported(tmp_path):
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=12,
                      diagnose={"window": 5, "grad_g_floor": 1e9})
    assert "vanishing_gradient" in kinds(gankit.train(cfg, quiet=True)["run"])


def test_a_frozen_generator_is_reported_as_mode_collapse(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, train={"max_steps": None, "epochs": 1},
                      optim={"lr_g": 1e-12})
    assert "mode_collapse" in kinds(gankit.train(cfg, quiet=True)["run"])
    toy = tiny_config("toy", tmp_path / "toy", dataset="ring", train={"max_steps": None, "epochs": 1},
                      optim={"lr_g": 1e-12})
    assert "mode_collapse" in kinds(gankit.train(toy, quiet=True)["run"])


def test_real_data_is_not_collapsed(tmp_path):
    real = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    messages = []
    diag = Diagnostics(build_config(), True, real, tmp_path, messages.append)
    assert 0.9 < diag.on_samples(real.float() / 127.5 - 1, 1, 1) < 1.1 and not messages
    assert diversity(torch.zeros(8, 1, 28, 28)) == 0.0


def test_strict_stops_with_exit_code_4(tmp_path, capsys):
    code = main(["train", "--dataset", "ring", "--out", str(tmp_path / "run"), "--quiet", "--strict",
                 "--max-steps", "50", "--set", "data.toy_size=512", "--set", "diagnose.window=5",
                 "--set", "diagnose.grad_g_floor=1e9"])
    assert code == 4 and "--strict" in capsys.readouterr().err
