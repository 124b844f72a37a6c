"""The semi-supervised K+1 GAN (Salimans et al. 2016) and its switches: the losses against hand
computations, the balanced labelled stream, the average of D's weights, the learning-rate decay, and a tiny
run on a learnable dataset that logs a test accuracy above chance which `gankit classify` reproduces."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.testing import assert_close

import gankit
from gankit.cli import main
from gankit.conditioning import balanced_stream, mode_of, pull_away, random_shift
from gankit.config import CondConfig, ModelConfig, build_config
from gankit.errors import GankitError
from gankit.losses import OBJECTIVES
from gankit.training.ema import ema_decay_at
from gankit.training.gan import GanRecipe
from gankit.training.steps import Batch, Extras, d_step
from gankit.training.watch import Position

from ..conftest import assert_same_weights, newest_checkpoint, tiny_config, write_idx

TINY_SS = {"name": "ssgan-mlp", "latent_dim": 4, "g_hidden": [8], "d_hidden": [8]}


def _nets(K: int = 3, **cond):
    torch.manual_seed(0)
    mode = mode_of(CondConfig(mode="ssgan", **cond), K)
    G, D = mode.build(ModelConfig(**TINY_SS), (1, 28, 28))
    return mode, G, D


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_k_plus_one_d_loss_is_the_papers_with_its_weight(weight):
    """l = CE(labelled) + w (-E lse(l_real) + E softplus(lse(l_real)) + E softplus(lse(l_fake))), w = 0.5 as in
    openai/improved-gan: the K+1-th logit is 0, so D(x) = Z / (Z + 1) with Z = sum_k exp(l_k)."""
    mode, G, D = _nets(unsup_weight=weight)
    G.eval(), D.eval()  # no noise, BatchNorm's running statistics: d_step sees the same outputs as below
    real, lab = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(5, 1, 28, 28) * 2 - 1
    y, z = torch.tensor([0, 1, 2, 0, 1]), torch.rand(6, 4)
    with torch.no_grad():
        l_real, l_fake, l_lab = D(real)[1], D(G(z))[1], D(lab)[1]  # [N,K] class logits
    lse = torch.logsumexp(l_real, 1)
    unl = -lse.mean() + F.softplus(lse).mean() + F.softplus(torch.logsumexp(l_fake, 1)).mean()
    lab_loss = -l_lab[torch.arange(5), y].mean() + torch.logsumexp(l_lab, 1).mean()
    opt = torch.optim.SGD(D.parameters(), lr=0.0)
    stats = d_step(G, D, opt, Batch(real, z, labelled=(lab, y)), OBJECTIVES.get("nonsat"), Extras(cond=mode))
    assert_close(stats["loss_d"], lab_loss + weight * unl)
    assert_close(stats["class_d"], lab_loss)


def test_bad_gan_terms_of_g_by_hand():
    mode, G, D = _nets(pull_away=0.8, low_density=2.0)
    D.eval()
    fake = torch.rand(5, 1, 28, 28) * 2 - 1
    terms = mode.g_extra(D, fake, None, None, None)
    f = D.features(fake)
    u = f / f.norm(dim=1, keepdim=True)
    cos = u @ u.T
    pt = sum(cos[i, j] ** 2 for i in range(5) for j in range(5) if i != j) / 20
    assert_close(terms["pull_away"], 0.8 * pt)
    assert_close(terms["low_density"], 2.0 * F.relu(D(fake)[0]).mean())  # fakes with D(x) > 1/2 pay log Z
    assert pull_away(torch.ones(4, 3)).item() == pytest.approx(1.0)  # identical features: no entropy at all
    assert mode_of(CondConfig(mode="ssgan"), 3).g_extra(D, fake, None, None, None) == {}  # off by default


def test_consistency_compares_two_shifts_of_the_unlabelled_batch():
    x = torch.randn(6, 1, 10, 10)
    shifted = random_shift(x)
    padded = F.pad(x, (2,) * 4, mode="replicate")
    for i in range(6):  # each image is one of the 25 shifts of at most 2 px
        assert any(torch.equal(shifted[i], padded[i, :, dy:dy + 10, dx:dx + 10]) for dy in range(5) for dx in range(5))
    mode, G, D = _nets(consistency=3.0)
    lab = (torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2]))
    terms = mode.labelled_terms(D, torch.rand(4, 1, 28, 28), lab, lambda v: v)
    assert set(terms) == {"class_d", "consistency"} and terms["consistency"] > 0
    D.eval()
    flat = torch.zeros(4, 1, 28, 28)  # a shift of a uniform image is itself: both views agree
    assert terms["consistency"].requires_grad and mode.labelled_terms(D, flat, lab, lambda v: v)["consistency"] == 0


def test_balanced_stream_takes_every_class_in_turn_and_changes_with_the_seed():
    classes = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])  # 3 classes of 3, 2 and 4 labelled examples
    order = balanced_stream(classes, 60, torch.Generator().manual_seed(0))
    assert order.shape == (60,)
    for r in range(20):  # each round of 3 holds every class once
        assert sorted(classes[order[3 * r:3 * r + 3]].tolist()) == [0, 1, 2]
    counts = torch.bincount(order, minlength=9)
    for k, n in ((0, 3), (1, 2), (2, 4)):  # within a class, its examples in turn: each as often as the others +-1
        c = counts[classes == k]
        assert len(c) == n and c.sum() == 20 and c.max() - c.min() <= 1, (k, c)
    assert not torch.equal(order, balanced_stream(classes, 60, torch.Generator().manual_seed(1)))


def test_labelled_batches_are_balanced_and_redrawn_every_epoch(tmp_path, idx_dir_with_test):
    cfg = tiny_config("ssgan-mlp", tmp_path / "r", data_dir=idx_dir_with_test, cond={"labels_per_class": 3},
                      train={"batch_size": 20})
    recipe = GanRecipe(cfg)
    y0 = recipe.batch(0, 0).labelled[1]
    assert torch.equal(torch.bincount(y0, minlength=10), torch.full((10,), 2))  # 20 = 2 of each class
    ids = [recipe.batch(e, 1).labelled[0] for e in (0, 1)]
    assert not torch.equal(ids[0], ids[1])  # a new order every epoch...
    again = GanRecipe(cfg)
    assert torch.equal(again.batch(1, 1).labelled[0], ids[1])  # ...a pure function of seed and epoch (resume)


def test_averaged_d_is_the_hand_computed_average(tmp_path, idx_dir_with_test):
    cfg = tiny_config("ssgan-mlp", tmp_path / "r", data_dir=idx_dir_with_test, cond={"labels_per_class": 2, "d_ema": 0.2})
    recipe = GanRecipe(cfg)
    expected = [p.detach().clone() for p in recipe.D.parameters()]
    for i in range(3):
        recipe.step(recipe.batch(0, i), i)
        d = ema_decay_at(0.2, i + 1)  # min(0.2, (1 + n) / (10 + n)): 0.18, then 0.2
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, recipe.D.parameters())]
    for e, a in zip(expected, recipe.d_ema.parameters()):
        assert_close(a, e)
    state = recipe.extra_state()
    assert state["d_ema_updates"] == 3 and set(state["d_ema"]) == set(recipe.D.state_dict())


def test_resume_is_exact_with_the_labelled_stream_and_the_averaged_d(tmp_path, idx_dir_with_test):
    """4 steps, resume to 8 (across an epoch: a new labelled order) equals 8 straight, D's average included.
    (Without cond.lr_decay: its decay follows the budget, which the resume raises.)"""
    def cfg(out, steps):
        return tiny_config("ssgan-mlp", tmp_path / out, data_dir=idx_dir_with_test, steps=steps,
                           cond={"labels_per_class": 2, "lr_decay": 0.0}, train={"checkpoint_every": 4})
    straight = gankit.train(cfg("a", 8), quiet=True)
    gankit.train(cfg("b", 4), quiet=True)
    resumed = gankit.resume(tmp_path / "b", {"max_steps": 8}, quiet=True)
    a, b = newest_checkpoint(straight["run"]), newest_checkpoint(resumed["run"])
    assert a["step"] == b["step"] == 8
    assert_same_weights(a, b)
    assert all(torch.equal(a["extra"]["d_ema"][k], v) for k, v in b["extra"]["d_ema"].items())


def test_learning_rates_decay_linearly_over_the_last_share_of_the_budget(tmp_path, idx_dir_with_test):
    cfg = tiny_config("ssgan-mlp", tmp_path / "r", data_dir=idx_dir_with_test, steps=90,
                      cond={"labels_per_class": 2, "lr_decay": 1 / 3})
    recipe = GanRecipe(cfg)
    factors = [recipe.lr_factor(Position(step=s)) for s in (0, 59, 60, 75, 90)]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.0])
    recipe.apply_schedules(Position(step=75))
    assert recipe.optims["d"].param_groups[0]["lr"] == pytest.approx(0.5 * 3e-3)


def test_switches_act_in_the_semi_supervised_gan_only():
    with pytest.raises(GankitError, match="cond.d_ema would do nothing here"):
        build_config("dcgan", overrides=[{"cond": {"d_ema": 0.99}}])
    with pytest.raises(GankitError, match="cond.pull_away would do nothing here.*without cond.supervised_only"):
        build_config("ssgan-mlp", overrides=[{"cond": {"supervised_only": True, "pull_away": 0.8}}])
    with pytest.raises(GankitError, match="cond.lr_decay"):
        build_config("ssgan-mlp", overrides=[{"cond": {"lr_decay": 1.5}}])


# ---------------------------------------------------------------- a tiny run that learns
def _learnable_idx(root: Path) -> Path:
    """10 classes, each a bright 8x8 square at its own place on noise: 20 training and 10 test images a class."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for split, n in (("train", 200), ("t10k", 100)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(y):
            r, c = 2 + 13 * (k // 5), 1 + 5 * (k % 5)
            x[i, r:r + 8, c:c + 8] = 255
        write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return root


def test_a_tiny_run_beats_chance_and_classify_agrees_with_its_log(tmp_path, capsys):
    data = _learnable_idx(tmp_path / "idx")
    cfg = tiny_config("ssgan-mlp", tmp_path / "ss", data_dir=data, steps=None, cond={"labels_per_class": 2},
                      data={"limit": None}, model={"d_hidden": [32], "g_hidden": [32]},
                      train={"epochs": 3, "max_steps": None, "batch_size": 20})
    gankit.train(cfg, quiet=True)
    history = json.loads((tmp_path / "ss" / "metrics.json").read_text())["history"]
    last = history[-1]["metrics"]
    assert len(history) == 3 and {"test_accuracy", "test_accuracy_ema"} <= set(last)
    assert last["test_accuracy"] > 0.5 and last["test_accuracy_ema"] > 0.3  # chance: 0.1
    # the test images as files: classify them with the run's D (the raw one, as logged under test_accuracy)
    from gankit.data.idx import read_idx

    images, labels = read_idx(data / "t10k-images-idx3-ubyte.gz"), read_idx(data / "t10k-labels-idx1-ubyte.gz")
    files = []
    for i in range(len(images)):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(images[i].numpy()).save(files[-1])
    assert main(["classify", str(tmp_path / "ss"), *map(str, files), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    right = sum(r["class"] == int(k) for r, k in zip(rows, labels))
    assert right / len(rows) == pytest.approx(last["test_accuracy"], abs=1e-9)


def test_baseline_trains_d_alone(tmp_path, idx_dir_with_test):
    base = tiny_config("ssgan-mlp", tmp_path / "base", data_dir=idx_dir_with_test, steps=4,
                       cond={"labels_per_class": 2, "supervised_only": True})
    recipe = GanRecipe(base)
    g0 = {k: v.clone() for k, v in recipe.G.state_dict().items()}
    d0 = [p.detach().clone() for p in recipe.D.parameters()]
    stats = recipe.step(recipe.batch(0, 0), 0)
    assert set(stats) >= {"class_d", "loss_d"} and "loss_g" not in stats
    assert all(torch.equal(g0[k], v) for k, v in recipe.G.state_dict().items())  # G never moves
    assert any(not torch.equal(a, p) for a, p in zip(d0, recipe.D.parameters()))
