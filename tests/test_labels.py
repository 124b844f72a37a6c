"""GANs that use labels or codes: cGAN (concat, projection, conditional BN), AC-GAN, InfoGAN, the
semi-supervised K+1 GAN, conditional sampling and evaluation."""
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
from gankit.conditioning import mode_of
from gankit.config import CondConfig, ModelConfig, build_config
from gankit.data import toy_centers
from gankit.errors import GankitError
from gankit.sampling import generate, load_generator

from .conftest import tiny_config

SMALL = {"g_width": 8, "d_width": 8, "latent_dim": 8}


def toy_cond(out: Path, steps: int, **cond):
    return build_config("toy", overrides=[{
        "data": {"dataset": "ring", "toy_size": 4096}, "model": {"g_hidden": [64, 64], "d_hidden": [64, 64]},
        "train": {"max_steps": steps, "epochs": None, "out": str(out), "batch_size": 64, "num_samples": 80},
        "cond": cond}])


@pytest.mark.parametrize("d", ["projection", "concat"])
def test_cgan_draws_the_requested_mode_of_the_ring(tmp_path, d):
    """The ring's 8 modes as classes: after a short run each requested class lands on its own mode."""
    gankit.train(toy_cond(tmp_path / "run", 250, mode="cgan", d=d), quiet=True)
    G, cfg, _ = load_generator(tmp_path / "run")
    hits = []
    for k in range(8):
        x = generate(G, cfg, 200, classes=torch.full((200,), k))
        hits.append((torch.cdist(x, toy_centers("ring")).argmin(1) == k).float().mean().item())
    assert np.mean(hits) > 0.8, hits
    # the CLI: by index, errors name the classes
    assert main(["sample", str(tmp_path / "run"), "--class", "3", "--num", "50", "--out", str(tmp_path / "c.npz")]) == 0
    pts = torch.from_numpy(np.load(tmp_path / "c.npz")["samples"])
    assert (torch.cdist(pts, toy_centers("ring")).argmin(1) == 3).float().mean() > 0.5
    assert main(["sample", str(tmp_path / "run"), "--class", "8", "--out", str(tmp_path / "x.png")]) == 2


def test_projection_discriminator_by_hand():
    torch.manual_seed(0)
    _, D = mode_of(CondConfig(mode="cgan"), 3).build(ModelConfig(name="gan-mlp", d_hidden=[4]), (2,))
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    out, aux = D(x, y)
    phi = D.inner.features(x)
    assert aux is None
    assert_close(out, D.inner.head(phi) + (D.embed(y) * phi).sum(1))


def test_concat_discriminator_sees_one_hot_maps_and_cbn_generator_depends_on_class():
    torch.manual_seed(0)
    cc = CondConfig(mode="cgan", d="concat", g="cbn")
    G, D = mode_of(cc, 10).build(ModelConfig(name="dcgan", **SMALL), (1, 28, 28))
    assert D.inner.body[0].in_channels == 1 + 10  # image + 10 one-hot class maps
    z = torch.randn(4, 8).repeat(2, 1)
    y = torch.tensor([0, 0, 0, 0, 5, 5, 5, 5])
    G.train()
    x = G(z, y)
    assert x.shape == (8, 1, 28, 28)
    assert not torch.allclose(x[:4], x[4:])  # the same z, another class: another image
    G.eval()
    with torch.no_grad():  # the class acts through each BatchNorm's own scale and shift
        before = G(z, y)
        for m in G.cbns:
            m.beta.weight[5] += 1.0
        after = G(z, y)
    assert torch.equal(after[:4], before[:4]) and not torch.allclose(after[4:], before[4:], atol=1e-2)
    assert D(x, y)[0].shape == (8,)
    with pytest.raises(GankitError, match="model.g_batchnorm=true"):
        mode_of(cc, 10).build(ModelConfig(name="dcgan", g_batchnorm=False, **SMALL), (1, 28, 28))


def test_acgan_losses_and_the_generators_own_classifier_head():
    torch.manual_seed(0)
    cc = CondConfig(mode="acgan", g_classifier=True)
    G, D = mode_of(cc, 10).build(ModelConfig(name="dcgan", **SMALL), (1, 28, 28))
    z, y = torch.randn(6, 8), torch.arange(6)
    image, logits, probs = G.classify(z, y)
    assert image.shape == (6, 1, 28, 28) and logits.shape == (6, 10)
    assert_close(probs.sum(1), torch.ones(6))
    out, cls = D(image)
    assert out.shape == (6,) and cls.shape == (6, 10)
    c = mode_of(cc, 10)
    extra = c.d_extra(cls, cls, y, y)
    assert_close(extra["class_d"], 2 * F.cross_entropy(cls, y))
    g = c.g_extra(D, image, cls, y, logits)
    assert set(g) == {"class_g", "class_g_head"}


def test_infogan_codes_loss_and_traversal(tmp_path):
    cc = CondConfig(mode="infogan", cat_codes=[3], cont_codes=1)
    c = mode_of(cc)
    codes = c.sample(5, torch.Generator().manual_seed(0))
    assert codes.shape == (5, 4) and torch.equal(codes[:, :3].sum(1), torch.ones(5))
    assert (codes[:, 3].abs() <= 1).all()
    q = torch.randn(5, 4)
    expected = F.cross_entropy(q[:, :3], codes[:, :3].argmax(1)) + 0.5 * (q[:, 3] - codes[:, 3]).pow(2).mean()
    assert_close(c.info_loss(q, codes), expected)
    # a traversal keeps z per row and walks one code across the columns
    grid = c.traversal("cat0", torch.zeros(2, 8))
    assert grid.shape == (6, 4) and torch.equal(grid[:3, :3], torch.eye(3))
    cont = c.traversal("cont0", torch.zeros(2, 8), steps=5)
    assert_close(cont[:5, 3], torch.linspace(-2, 2, 5))
    # a run, and the CLI's traversal grid
    cfg = toy_cond(tmp_path / "info", 30, mode="infogan", cat_codes=[8], cont_codes=1)
    gankit.train(cfg, quiet=True)
    assert main(["sample", str(tmp_path / "info"), "--vary", "cat0", "--num", "16", "--out",
                 str(tmp_path / "v.npz")]) == 0
    assert np.load(tmp_path / "v.npz")["samples"].shape == (2 * 8, 2)
    assert main(["sample", str(tmp_path / "info"), "--vary", "cont3", "--out", str(tmp_path / "v.png")]) == 2
    rows = [json.loads(r) for r in (tmp_path / "info" / "log.jsonl").read_text().splitlines()]
    assert "info" in rows[-1] and "info_g" in rows[-1]


def test_semi_supervised_d_is_a_k_plus_1_classifier():
    torch.manual_seed(0)
    _, D = mode_of(CondConfig(mode="ssgan"), 4).build(ModelConfig(name="gan-mlp", d_hidden=[8]), (2,))
    logit, classes = D(torch.randn(7, 2))
    Z = classes.exp().sum(1)
    assert_close(torch.sigmoid(logit), Z / (Z + 1))  # D(x) = Z / (Z + 1): "fake" is class K+1


def test_ssgan_trains_logs_test_accuracy_and_classifies(tmp_path, idx_dir, capsys):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # the test split
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    cfg = tiny_config("ssgan", tmp_path / "ss", data_dir=idx_dir, steps=None,
                      train={"epochs": 2, "max_steps": None}, cond={"labels_per_class": 2})
    summary = gankit.train(cfg, quiet=True)
    history = json.loads((tmp_path / "ss" / "metrics.json").read_text())["history"]
    accs = [h["metrics"]["test_accuracy"] for h in history if "test_accuracy" in h["metrics"]]
    assert len(accs) == summary["epochs"] == 2 and all(0 <= a <= 1 for a in accs)
    # classify image files with D
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    assert main(["classify", str(tmp_path / "ss"), str(tmp_path / "a.png"), "--top", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert 0 <= row["class"] < 10 and len(row["top"]) == 3 and row["name"] in (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert main(["classify", str(tmp_path / "ss"), str(tmp_path / "missing.png")]) == 2
    assert "not found" in capsys.readouterr().err
    # the baseline: the same D on the labelled examples alone; G never moves
    base = tiny_config("ssgan", tmp_path / "base", data_dir=idx_dir, steps=4,
                       cond={"labels_per_class": 2, "supervised_only": True})
    gankit.train(base, quiet=True)
    from gankit.run import list_step_checkpoints, load_file

    ck = load_file(list_step_checkpoints(tmp_path / "base")[0])
    torch.manual_seed(base.train.seed)
    G0, _ = mode_of(base.cond, 10).build(base.model, (1, 28, 28))
    assert all(torch.equal(G0.state_dict()[k], v) for k, v in ck["G"].items())


def test_labelled_subset_has_n_per_class():
    from gankit.training.setup import pick_labelled

    labels = torch.arange(100) % 5
    idx = pick_labelled(labels, 3, seed=0)
    assert torch.equal(torch.bincount(labels[idx]), torch.full((5,), 3))
    with pytest.raises(GankitError, match="fewer than cond.labels_per_class"):
        pick_labelled(labels, 30, seed=0)


def test_conditional_grid_has_one_class_per_row_and_per_class_eval(tmp_path, idx_dir, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    cfg = tiny_config("acgan", tmp_path / "ac", data_dir=idx_dir, steps=None, train={"epochs": 1, "max_steps": None})
    gankit.train(cfg, quiet=True)
    grid = Image.open(tmp_path / "ac" / "samples" / "epoch-0001.png")
    assert grid.height == 10 * (28 + 2) + 2  # 10 classes, one per row
    assert main(["judge", "train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "ac"), "--per-class", "--num", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["per_class"]) == 10
    assert all(0 <= v["judge_accuracy"] <= 1 and v["fid"] >= 0 for v in result["per_class"].values())
    assert main(["eval", str(tmp_path / "ac"), "--per-class", "--num", "20"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("T-shirt/top")


def test_conditioning_needs_labels_and_refuses_bad_combinations(tmp_path, image_folder):
    with pytest.raises(GankitError, match="needs a labelled dataset"):
        gankit.train(build_config("cgan", overrides=[{"data": {"dataset": str(image_folder / "sub")},
                                                      "train": {"out": str(tmp_path / "r"), "batch_size": 2}}]), quiet=True)
    with pytest.raises(GankitError, match="does not combine with tech.pack"):
        build_config("cgan", overrides=[{"tech": {"pack": 2}}])
    with pytest.raises(GankitError, match="needs a BCE loss"):
        build_config("ssgan", overrides=[{"loss": {"name": "wgan-gp"}}])
