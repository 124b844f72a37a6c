"""Hyper-parameter schedules (issue 14 item 4): every kind at a few points, in steps and in images, their
errors, the learning rates and penalty weights they set, their log rows, and exact resume."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import gankit
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.run import list_step_checkpoints, load_file
from gankit.schedules import check, value_at
from tests.conftest import tiny_config


@pytest.mark.parametrize("spec, points", [
    ({"constant": 3.0}, {0: 3.0, 10: 3.0, 10**6: 3.0}),
    ({"linear": [1.0, 0.0], "over": 10}, {0: 1.0, 5: 0.5, 10: 0.0, 20: 0.0}),
    ({"linear": [0.0, 1.0], "over": 10, "burn_in": 4}, {0: 0.0, 4: 0.0, 9: 0.5, 14: 1.0}),
    # half a cosine: start + (end - start) * (1 - cos(pi u)) / 2
    ({"cosine": [1.0, 3.0], "over": 8}, {0: 1.0, 2: 1.0 + 2 * (1 - math.cos(math.pi / 4)) / 2, 4: 2.0, 8: 3.0}),
])
def test_each_kind_at_a_few_steps(spec, points):
    schedule = check("x", spec)
    for step, expected in points.items():
        assert value_at(schedule, step) == pytest.approx(expected, rel=1e-12, abs=1e-12), step


def test_a_schedule_in_images_shown_reads_the_images_not_the_steps():
    schedule = check("x", {"linear": [0.0, 1.0], "over": 1000, "per": "images"})
    assert value_at(schedule, step=5, images=500) == pytest.approx(0.5)
    assert value_at(schedule, step=500, images=0) == 0.0
    assert value_at(2e-4, 123, 456) == 2e-4  # a plain number is its own value


@pytest.mark.parametrize("bad, words", [
    ({"linear": [1.0]}, "takes [START, END]"), ({"sqrt": [1, 0]}, "expected a number or a schedule"),
    ({"linear": [1, 0], "over": -5}, "whole numbers >= 0"), ({"linear": [1, 0], "per": "epochs"}, "steps or images"),
    ({"linear": [1, 0], "cosine": [1, 0]}, "expected a number or a schedule"),
])
def test_bad_schedules_are_one_line_errors(bad, words):
    with pytest.raises(GankitError, match=words.replace("[", r"\[")):
        build_config(overrides=[{"optim": {"lr_g": bad}}])


def test_a_learning_rate_may_decay_to_zero_but_not_start_there():
    build_config(overrides=[{"optim": {"lr_g": {"linear": [2e-4, 0.0], "over": 100}}}])
    with pytest.raises(GankitError, match="must be positive"):
        build_config(overrides=[{"optim": {"lr_g": {"linear": [0.0, 2e-4], "over": 100}}}])
    with pytest.raises(GankitError, match="finite"):
        build_config(overrides=[{"tech": {"r1_gamma": {"linear": [float("nan"), 0.0]}}}])


def _scheduled(out: Path, steps: int):
    return tiny_config("toy", out, dataset="ring", steps=steps,
                       optim={"lr_g": {"linear": [1e-3, 0.0], "over": 8}, "beta2": {"cosine": [0.9, 0.99], "over": 8}},
                       tech={"r1_gamma": {"linear": [1.0, 0.0], "over": 8}})


def test_the_optimizers_follow_the_schedule_and_the_log_shows_it(tmp_path):
    run = Path(gankit.train(_scheduled(tmp_path / "run", 8), quiet=True)["run"])
    rows = [json.loads(r) for r in (run / "log.jsonl").read_text().splitlines()]
    # the value used at step s (before it) is logged on the row of step s + 1
    assert [r["lr_g"] for r in rows] == pytest.approx([1e-3 * (1 - s / 8) for s in range(8)], rel=1e-6)
    assert rows[0]["beta2"] == pytest.approx(0.9) and rows[-1]["r1_gamma"] == pytest.approx(1 / 8)
    assert "lr_d" not in rows[0]  # constants are not logged as schedules
    opt_g = load_file(list_step_checkpoints(run)[0])["opt_g"]["param_groups"][0]
    assert opt_g["lr"] == pytest.approx(1e-3 / 8) and opt_g["betas"][1] == pytest.approx(rows[-1]["beta2"])


def test_resume_continues_a_schedule_exactly(tmp_path):
    straight = gankit.train(_scheduled(tmp_path / "a", 8), quiet=True)["run"]
    gankit.train(_scheduled(tmp_path / "b", 4), quiet=True)
    resumed = gankit.resume(tmp_path / "b", {"max_steps": 8}, quiet=True)["run"]
    a, b = (load_file(list_step_checkpoints(Path(r))[0]) for r in (straight, resumed))
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_an_ema_half_life_in_images_keeps_an_average(tmp_path):
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=4, train={"ema_half_life": 64.0})
    ckpt = load_file(list_step_checkpoints(Path(gankit.train(cfg, quiet=True)["run"]))[0])
    assert "G_ema" in ckpt and any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"])


def test_the_report_plots_the_schedules(tmp_path):
    run = Path(gankit.train(_scheduled(tmp_path / "run", 4), quiet=True)["run"])
    assert (run / "schedules.png").is_file() and "schedules.png" in (run / "report.html").read_text()


def test_a_negative_ema_half_life_is_refused():
    with pytest.raises(GankitError, match="train.ema_half_life"):
        build_config(overrides=[{"train": {"ema_half_life": -5.0}}])
