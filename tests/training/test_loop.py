"""The training loop: every preset trains, artifacts, seeds, EMA, evaluation during training, divergence."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.config import preset_names
from gankit.errors import GankitError
from gankit.run import list_step_checkpoints, load_file

from ..conftest import assert_same_weights, newest_checkpoint, read_log, tiny_config, train_tiny


def _dataset_for(preset):
    return "ring" if preset == "toy" else "fashion-mnist"


@pytest.mark.parametrize("preset", [p for p in preset_names() if p not in ("pix2pix", "cyclegan")])
def test_every_preset_trains_a_few_steps(preset, tmp_path, idx_dir):
    extra = {"cond": {"labels_per_class": 2}} if preset.startswith("ssgan") else {}  # the tiny set has ~6 per class
    cfg = tiny_config(preset, tmp_path / "run", dataset=_dataset_for(preset), data_dir=idx_dir, steps=4, **extra)
    summary = gankit.train(cfg, quiet=True)
    run = Path(summary["run"])
    assert summary["steps"] == 4 and summary["stopped_by"] == "max_steps"
    rows = read_log(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss_d", "loss_d_real", "loss_d_fake", "d_real", "d_fake", "img_per_s"):
        assert all(torch.isfinite(torch.tensor(r[key])) for r in rows), key
    if cfg.optim.n_critic == 1:
        assert "loss_g" in rows[0]
    if cfg.loss.name in ("nonsat", "minimax"):  # D outputs are probabilities for the BCE losses
        assert all(0 <= r["d_real"] <= 1 for r in rows)
    # (pix2pix and cyclegan presets are trained by tests/training/test_translation.py on the paired/unpaired fixtures)
    assert (run / "config.yaml").is_file() and (run / "samples" / "final.png").is_file()
    assert (run / "losses.png").is_file() and (run / "d_outputs.png").is_file()
    assert [p.name for p in list_step_checkpoints(run)] == ["step-000004.pt", "step-000002.pt"]


def test_training_changes_weights_and_writes_epoch_artifacts(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, train={"max_steps": None, "epochs": 2,
                                                                           "sample_every_images": 64})
    summary = gankit.train(cfg, quiet=True)
    run = Path(summary["run"])
    assert summary["steps"] == 8 and summary["epochs"] == 2  # 64 images / batch 16 = 4 steps per epoch
    assert sorted(p.name for p in (run / "samples").glob("step-*.png")) == ["step-00000004.png", "step-00000008.png"]
    assert (run / "progression.png").is_file()
    first, last = load_file(list_step_checkpoints(run)[-1]), newest_checkpoint(run)
    assert not torch.equal(first["G"]["net.0.weight"], last["G"]["net.0.weight"])


def test_same_seed_same_weights(tmp_path, idx_dir):
    a = newest_checkpoint(train_tiny("dcgan", tmp_path / "a", data_dir=idx_dir))
    b = newest_checkpoint(train_tiny("dcgan", tmp_path / "b", data_dir=idx_dir))
    assert_same_weights(a, b, ("G",))


def test_refuses_to_overwrite_a_run(tmp_path, idx_dir):
    train_tiny("dcgan", tmp_path / "run", data_dir=idx_dir)
    with pytest.raises(GankitError, match="already holds a run; continue it with `gankit train --resume"):
        gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir), quiet=True)


def test_eval_every_keeps_the_best_checkpoint_and_plots_the_metric(tmp_path):
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring",
                      train={"max_steps": None, "epochs": 3, "eval_every": 1, "eval_num": 300})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[0]["best"] is True
    assert all("modes" in h["metrics"] for h in history)
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "metrics.png").is_file()
    best = load_file(run / "checkpoints" / "best.pt")
    assert best["step"] == max(h["step"] for h in history if h["best"])
    gankit.sample(run, 10, tmp_path / "b.npz", checkpoint="best")


def test_sampling_dropout_does_not_shift_the_training_rng(tmp_path, idx_dir):
    """Epoch-end sample grids with dropout kept on must not change what training does next."""
    kw = dict(data_dir=idx_dir, model={"name": "resnet-rrb", "dropout": 0.5},
              train={"max_steps": None, "epochs": 2})
    a = gankit.train(tiny_config("resnet-rrb", tmp_path / "a", **kw), quiet=True)
    b_cfg = tiny_config("resnet-rrb", tmp_path / "b", **kw)
    b_cfg.train.num_samples = 4  # a different number of fixed-z samples draws different dropout masks
    b = gankit.train(b_cfg, quiet=True)
    wa = newest_checkpoint(a["run"])["G"]
    wb = newest_checkpoint(b["run"])["G"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ema_of_generator_weights(tmp_path, idx_dir):
    from gankit.training.ema import ema_update_, make_ema

    net = nn.Linear(2, 1)
    ema = make_ema(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    before = ema.weight.clone()
    ema_update_(ema, net, 0.9)
    torch.testing.assert_close(ema.weight, 0.9 * before + 0.1 * net.weight)
    # warm-up: the first updates follow G closely ((1+n)/(10+n)), later ones use the asked decay
    before = ema.weight.clone()
    ema_update_(ema, net, 0.999, updates=0)
    torch.testing.assert_close(ema.weight, 0.1 * before + 0.9 * net.weight)
    from gankit.training.ema import ema_decay_at

    assert ema_decay_at(0.999, 10) == pytest.approx(11 / 20) and ema_decay_at(0.999, 10**6) == 0.999
    cfg = tiny_config("gan-mlp", tmp_path / "run", data_dir=idx_dir, train={"ema_decay": 0.5})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    ckpt = newest_checkpoint(run)
    assert ckpt["G_ema"] is not None
    assert any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"])
    G, _, _ = gankit.load_generator(run)
    assert all(torch.equal(v, ckpt["G_ema"][k]) for k, v in G.state_dict().items())  # sampling uses the EMA


def test_divergence_stops_cleanly_and_never_saves_nan_weights(tmp_path, idx_dir, capsys):
    from gankit.cli import main

    out = tmp_path / "run"
    code = main(["train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "gan-mlp",
                 "--loss", "wgan", "--optimizer", "sgd", "--lr-d", "1e30", "--lr-g", "1e30",
                 "--max-steps", "40", "--checkpoint-every", "1", "--batch-size", "16", "--limit", "64",
                 "--out", str(out), "--quiet", "--set", "loss.clip=1e30"])
    err = capsys.readouterr().err
    assert code == 3 and "training diverged at step" in err
    for path in list_step_checkpoints(out):  # whatever was saved is finite
        ckpt = load_file(path)
        assert all(torch.isfinite(v).all() for v in ckpt["G"].values() if v.is_floating_point())
    rows = read_log(out)
    # lr 1e30: the first D update already sends the same step's G loss to inf, so step 1 is the last row
    assert rows[-1]["step"] == 1 and rows[-1]["nonfinite"] is True
    assert "NaN" not in (out / "log.jsonl").read_text()


def test_clock_cpu_counts_the_budget_and_snapshots_on_the_process_cpu_time(tmp_path, monkeypatch):
    """train.clock=cpu: --minutes and snapshot_minutes follow the process's CPU time (a fake clock here that
    advances 1 s per reading), not the wall clock; the snapshot holds the state of when its minute passed."""
    import gankit
    from gankit.training import loop

    ticks = iter(range(10**6))
    monkeypatch.setitem(loop.CLOCKS, "cpu", lambda: float(next(ticks)))
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", steps=None,
                      train={"minutes": 10 / 60, "clock": "cpu", "snapshot_minutes": [4 / 60]})
    summary = gankit.train(cfg, quiet=True)
    assert summary["stopped_by"] == "minutes" and summary["steps"] == 10  # one fake second per step
    snap = torch.load(tmp_path / "run" / "checkpoints" / f"minute-{4 / 60:g}.pt", weights_only=True)
    assert snap["step"] == 4 and snap["elapsed"] == 4.0
