"""Diagnostics: plain-words warnings about a run going wrong, --strict, rollback."""
import json
from pathlib import Path

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import build_config
from gankit.observe.diagnostics import Diagnostics, diversity

from ..conftest import newest_checkpoint, read_log, tiny_config


def kinds(run) -> list[str]:
    path = Path(run) / "diagnostics.jsonl"
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()] if path.exists() else []


def test_discriminator_overpowering_is_reported(tmp_path, idx_dir):
    # a frozen G's near-blank images against random blobs: D wins at once and D(G(z)) falls to ~0
    cfg = tiny_config("gan-mlp", tmp_path / "run", data_dir=idx_dir, steps=40,
                      optim={"lr_g": 1e-12, "lr_d": 5e-3}, diagnose={"window": 10, "d_fake_floor": 0.05})
    summary = gankit.train(cfg, quiet=True)
    assert "d_overpowering" in kinds(summary["run"])
    rows = [json.loads(line) for line in (Path(summary["run"]) / "diagnostics.jsonl").read_text().splitlines()]
    assert summary["warnings"] == len(rows) >= 1  # the summary counts the warnings the file holds, one a line
    message = next(r["message"] for r in rows if r["kind"] == "d_overpowering")
    assert "mean D(G(z))" in message and "Try" in message


def test_vanishing_gradient_is_reported(tmp_path):
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=12,
                      diagnose={"window": 5, "grad_g_floor": 1e9})
    assert "vanishing_gradient" in kinds(gankit.train(cfg, quiet=True)["run"])


def test_a_frozen_generator_is_reported_as_mode_collapse(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, train={"max_steps": None, "epochs": 1,
                                                                           "sample_every_images": 64},
                      optim={"lr_g": 1e-12}, diagnose={"collapse_warmup": 0})
    assert "mode_collapse" in kinds(gankit.train(cfg, quiet=True)["run"])
    toy = tiny_config("toy", tmp_path / "toy", dataset="ring", train={"max_steps": None, "epochs": 1,
                                                                      "sample_every_images": 256},
                      optim={"lr_g": 1e-12}, diagnose={"collapse_warmup": 0})
    assert "mode_collapse" in kinds(gankit.train(toy, quiet=True)["run"])


def test_the_collapse_check_waits_for_its_warm_up(tmp_path, idx_dir):
    """Issue 13 item 24: the first grids of a run are noise; a collapse warning there is a false alarm."""
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, train={"max_steps": None, "epochs": 1,
                                                                           "sample_every_images": 64},
                      optim={"lr_g": 1e-12}, diagnose={"collapse_warmup": 300})
    assert "mode_collapse" not in kinds(gankit.train(cfg, quiet=True)["run"])


def test_learning_rates_that_saturate_d_are_named_and_strict_stops(tmp_path, idx_dir):
    """Issue 13 item 23: --lr-d 1e6 --lr-g 1e6 saturated D without a NaN and ended 'done'."""
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=30, optim={"lr_g": 1e6, "lr_d": 1e6},
                      diagnose={"window": 5, "strict": True})
    summary = gankit.train(cfg, quiet=True)
    assert "saturated" in kinds(summary["run"]) and summary["stopped_by"] == "strict"


def test_real_data_is_not_collapsed(tmp_path):
    real = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    messages = []
    diag = Diagnostics(build_config(), True, real, tmp_path, messages.append)
    # the samples are the real images themselves: exactly as diverse as real data
    assert diag.on_samples(real.float() / 127.5 - 1, 1000, 1) == pytest.approx(1.0, rel=1e-6) and not messages
    assert diversity(torch.zeros(8, 1, 28, 28)) == 0.0


def test_strict_stops_with_exit_code_4(tmp_path, capsys):
    code = main(["train", "--dataset", "ring", "--out", str(tmp_path / "run"), "--quiet", "--strict",
                 "--max-steps", "50", "--set", "data.toy_size=512", "--set", "diagnose.window=5",
                 "--set", "diagnose.grad_g_floor=1e9"])
    assert code == 4 and "--strict" in capsys.readouterr().err


def test_rollback_reloads_the_last_good_checkpoint_with_halved_learning_rates(tmp_path, idx_dir):
    cfg = tiny_config("gan-mlp", tmp_path / "run", data_dir=idx_dir, steps=40,
                      optim={"optimizer": "sgd", "lr_g": 1e-3, "lr_d": 1e-3},
                      diagnose={"on_divergence": "rollback", "max_rollbacks": 2})
    cfg.train.checkpoint_every = 1
    run = Path(cfg.train.out)
    import gankit.training.gan as loop

    calls = {"n": 0}
    real_d_step = loop.d_step

    def flaky_d_step(*args, **kwargs):  # the 10th and the 30th D step return a NaN loss
        calls["n"] += 1
        stats = real_d_step(*args, **kwargs)
        if calls["n"] in (10, 30):
            stats["loss_d"] = torch.tensor(float("nan"))
        return stats

    loop.d_step = flaky_d_step
    try:
        summary = gankit.train(cfg, quiet=True)
    finally:
        loop.d_step = real_d_step
    assert summary["stopped_by"] == "max_steps" and summary["steps"] == 40
    assert kinds(run).count("rollback") == 2
    ckpt = newest_checkpoint(run)
    # the halving compounds (issue 13 item 5): x0.5 after the first rollback, x0.25 after the second
    assert ckpt["lr_scale"] == 0.25 and ckpt["opt_g"]["param_groups"][0]["lr"] == 2.5e-4
    rows = [r["step"] for r in read_log(run)]
    assert rows == list(range(1, 41))  # the diverged row was replaced by the replayed one


def test_oscillation_without_progress(tmp_path):
    messages = []
    cfg = build_config(overrides=[{"diagnose": {"window": 20, "plateau_evals": 2}}])
    diag = Diagnostics(cfg, True, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), tmp_path, messages.append)
    for step in range(1, 21):  # a G loss that swings between 0.5 and 3
        diag.on_row({"step": step, "epoch": 1, "loss_g": 0.5 if step % 2 else 3.0})
    diag.on_eval({"fid": 10.0}, True, 20, 1)
    diag.on_eval({"fid": 11.0}, False, 40, 2)
    assert not messages  # one evaluation without progress is not a plateau yet
    diag.on_eval({"fid": 12.0}, False, 60, 3)
    assert len(messages) == 1 and "oscillation without progress" in messages[0]
    steady = []
    diag2 = Diagnostics(cfg, True, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), tmp_path, steady.append)
    for step in range(1, 21):
        diag2.on_row({"step": step, "epoch": 1, "loss_g": 1.0 + 0.01 * (step % 2)})
    for i in range(4):
        diag2.on_eval({"fid": 10.0 + i}, i == 0, 20 * i, i)
    assert not steady  # no progress, but no cycling either
