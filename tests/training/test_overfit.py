"""D's test accuracy and the overfitting watch (training/overfit.py): constructed discriminators with known
answers, ADA's r_t window, a measurement that leaves no trace, the warning on a D that memorises."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.conditioning import NONE
from gankit.config import build_config
from gankit.data import Data
from gankit.observe.diagnostics import Diagnostics
from gankit.training import overfit
from gankit.training.overfit import Probe, SignWindow, build_probe, measure

from ..conftest import newest_checkpoint, read_log, tiny_config


class ConstantD(nn.Module):
    """Calls everything real (logit +5) or everything fake (-5)."""

    def __init__(self, logit: float):
        super().__init__()
        self.logit = nn.Parameter(torch.tensor(logit))

    def forward(self, x):
        return self.logit.expand(len(x))


class MemorisingD(nn.Module):
    """Calls real exactly the images it has memorised; everything else fake."""

    def __init__(self, memorised: torch.Tensor):
        super().__init__()
        self.register_buffer("memory", memorised.flatten(1).float())  # [M, F]

    def forward(self, x):
        exact = "donot_use_mm_for_euclid_dist"  # a memorised image is at distance 0, not ~1e-3
        d = torch.cdist(x.flatten(1).float(), self.memory, compute_mode=exact).min(1).values  # [N] to the nearest one
        return torch.where(d < 1e-4, 5.0, -5.0)


def tiny_g() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))


def probe(train: torch.Tensor, heldout: torch.Tensor) -> Probe:
    return Probe(train, None, heldout, None, torch.randn(len(train), 8), None, chunk=8)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("logit, real_acc", [(5.0, 1.0), (-5.0, 0.0)])
def test_a_d_that_calls_everything_real_or_fake(logit, real_acc):
    values = measure(tiny_g(), ConstantD(logit), NONE, probe(images(32, 0), images(24, 1)), boundary=0.0)
    assert values["d_acc_heldout"] == values["d_acc_train"] == real_acc
    assert values["d_acc_fake"] == 1.0 - real_acc  # the share of fakes called fake
    assert values["d_out_heldout"] == values["d_out_train"] == values["d_out_fake"] == pytest.approx(logit)
    assert values["d_gap"] == 0.0


def test_a_memorising_d_is_perfect_on_training_images_and_blind_on_held_out_ones(tmp_path):
    train, held = images(32, 0), images(32, 1)
    D = MemorisingD(train.float() / 127.5 - 1)
    values = measure(tiny_g(), D, NONE, probe(train, held), boundary=0.0)
    assert values["d_acc_train"] == 1.0 and values["d_acc_heldout"] == 0.0 and values["d_acc_fake"] == 1.0
    assert values["d_gap"] == 1.0
    # the diagnostic reads the measures from the log row and names the gap and the remedy
    said = []
    diag = Diagnostics(build_config(), True, train, tmp_path, said.append)
    diag.on_row({"step": 100, "epoch": 3, **values})
    assert said == ["gankit: warning: D calls 100% of training images real but 0% of held-out ones at step 100: "
                    "the discriminator is overfitting; try --set tech.ada_target=0.6 or more data"]
    healthy = {**values, "d_acc_train": 0.62, "d_acc_heldout": 0.55}
    diag.on_row({"step": 200, "epoch": 6, **healthy})
    diag.on_row({"step": 300, "epoch": 9, **values})  # re-armed once the gap closed: warned again
    assert len(said) == 2 and json.loads((tmp_path / "diagnostics.jsonl").read_text().splitlines()[0])["kind"] == "overfitting"


def test_a_loss_without_a_boundary_splits_at_the_midpoint():
    """WGAN critics: only differences matter; the share is taken against the midpoint of the means."""
    train, held = images(32, 0), images(32, 1)
    D = MemorisingD(train.float() / 127.5 - 1)
    shifted = nn.Sequential()  # the memorising critic shifted by +100: the same judgement
    shifted.forward = lambda x: D(x) + 100.0
    values = measure(tiny_g(), shifted, NONE, probe(train, held), boundary=None)
    assert values["d_acc_train"] == 1.0 and values["d_acc_heldout"] == 0.0


def test_measuring_leaves_no_trace(idx_dir, tmp_path):
    """BatchNorm statistics, spectral-norm vectors and the RNG stay as they were: resume stays exact."""
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, data={"holdout": 0.25},
                      tech={"spectral_norm": True})
    recipe = gankit.training.make_recipe(cfg)
    before = {k: v.clone() for net in (recipe.G, recipe.D) for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    values = recipe.measure_overfitting()
    assert set(overfit.KEYS) <= set(values)
    after = {k: v for net in (recipe.G, recipe.D) for k, v in net.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before) and torch.equal(rng, torch.get_rng_state())
    assert recipe.G.training and recipe.D.training


def test_labelled_runs_show_d_each_images_class(idx_dir_with_test, tmp_path):
    cfg = tiny_config("cgan", tmp_path / "run", data_dir=idx_dir_with_test)
    recipe = gankit.training.make_recipe(cfg)
    p = build_probe(cfg, recipe.cond, recipe.data, recipe.heldout, recipe.device, recipe.local_batch)
    assert p.train_y is not None and p.heldout_y is not None and p.fake_y is not None
    seen = []
    judge = recipe.cond.judge
    recipe.cond.judge = lambda D, x, y=None: (seen.append(y), judge(D, x, y))[1]
    values = measure(recipe.G, recipe.D, recipe.cond, p, boundary=0.0)
    assert all(y is not None for y in seen) and 0.0 <= values["d_acc_heldout"] <= 1.0


def test_unlabelled_held_out_images_are_skipped_for_a_class_conditional_d():
    cfg = tiny_config("cgan", "unused")
    from gankit.conditioning import mode_of

    cond = mode_of(cfg.cond, 10)
    train = Data("x", images(32, 0), torch.arange(32) % 10)
    p = build_probe(cfg, cond, train, Data("x", images(8, 1)), torch.device("cpu"), 16)
    assert p.heldout is None and p.train_y is not None


def test_r_t_window_averages_the_latest_images_and_survives_resume():
    w = SignWindow(images=64)
    for sign in [1.0] * 8 + [-1.0] * 4:  # batches of 16: the window keeps the latest 64 images (4 batches)
        r_t = w.add(torch.tensor(sign), 16)
    assert r_t.item() == -1.0 and w.count == 64
    w.add(torch.tensor(0.5), 16)
    assert w.value().item() == pytest.approx((-1 * 48 + 0.5 * 16) / 64)
    again = SignWindow(images=64)
    again.load_state_dict(w.state_dict())
    assert torch.equal(again.value(), w.value())
    assert torch.equal(again.add(torch.tensor(1.0), 16), w.add(torch.tensor(1.0), 16))


def test_a_run_logs_the_measures_and_warns_when_d_memorises(tmp_path, idx_dir, monkeypatch):
    """The loop's plumbing: the measures join the log row of their step, the warning reaches diagnostics.jsonl
    and the report. (D here is made to memorise the run's own training images.)"""
    from gankit.training import gan

    def memorising(G, D, cond, p, boundary):
        return measure(G, MemorisingD(p.train.float() / 127.5 - 1), cond, p, boundary)

    monkeypatch.setattr(gan, "measure", memorising)
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=8, data={"holdout": 0.25},
                      train={"sample_every_images": 64})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    measured = [r for r in read_log(run) if "d_acc_heldout" in r]
    assert [r["step"] for r in measured] == [4, 8]  # every 64 images at batch 16
    assert measured[0]["d_acc_train"] == 1.0 and measured[0]["d_acc_heldout"] == 0.0
    assert all(-1.0 <= r["r_t"] <= 1.0 for r in read_log(run))  # ADA's r_t on every row (nonsat has a boundary)
    warning = json.loads((run / "diagnostics.jsonl").read_text().splitlines()[0])
    assert warning["kind"] == "overfitting" and warning["step"] == 4
    assert "the discriminator is overfitting" in (run / "report.html").read_text()


def test_resume_is_exact_with_the_measures_and_grids(tmp_path, idx_dir):
    kw = dict(data_dir=idx_dir, data={"holdout": 0.25}, train={"sample_every_images": 32},
              model={"minibatch_std": True}, tech={"spectral_norm": True})
    straight = Path(gankit.train(tiny_config("dcgan", tmp_path / "a", steps=9, **kw), quiet=True)["run"])
    gankit.train(tiny_config("dcgan", tmp_path / "b", steps=5, **kw), quiet=True)
    resumed = Path(gankit.resume(tmp_path / "b", {"max_steps": 9}, quiet=True)["run"])
    a, b = newest_checkpoint(straight), newest_checkpoint(resumed)
    assert all(torch.equal(a[n][k], b[n][k]) for n in ("G", "D") for k in a[n])
    keys = [*overfit.KEYS, "r_t"]
    rows_a, rows_b = read_log(straight), read_log(resumed)
    assert [[r.get(k) for k in keys] for r in rows_a] == [[r.get(k) for k in keys] for r in rows_b]
    assert sorted(p.name for p in (straight / "samples").iterdir()) == sorted(p.name for p in (resumed / "samples").iterdir())
