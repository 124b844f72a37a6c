"""The labelled modes (gankit.conditioning) one by one: their networks, codes and losses."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import gankit
from gankit.conditioning import mode_of
from gankit.config import CondConfig, ModelConfig, build_config
from gankit.errors import GankitError

SMALL = {"g_width": 8, "d_width": 8, "latent_dim": 8}


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


def test_infogan_codes_loss_and_traversal():
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



def test_semi_supervised_d_is_a_k_plus_1_classifier():
    torch.manual_seed(0)
    _, D = mode_of(CondConfig(mode="ssgan"), 4).build(ModelConfig(name="gan-mlp", d_hidden=[8]), (2,))
    logit, classes = D(torch.randn(7, 2))
    Z = classes.exp().sum(1)
    assert_close(torch.sigmoid(logit), Z / (Z + 1))  # D(x) = Z / (Z + 1): "fake" is class K+1


def test_labelled_subset_has_n_per_class():
    from gankit.training.setup import pick_labelled

    labels = torch.arange(100) % 5
    idx = pick_labelled(labels, 3, seed=0)
    assert torch.equal(torch.bincount(labels[idx]), torch.full((5,), 3))
    with pytest.raises(GankitError, match="fewer than cond.labels_per_class"):
        pick_labelled(labels, 30, seed=0)


def test_conditioning_needs_labels_and_refuses_bad_combinations(tmp_path, image_folder):
    with pytest.raises(GankitError, match="needs a labelled dataset"):
        gankit.train(build_config("cgan", overrides=[{"data": {"dataset": str(image_folder / "sub")},
                                                      "train": {"out": str(tmp_path / "r"), "batch_size": 2}}]), quiet=True)
    with pytest.raises(GankitError, match="does not combine with tech.pack"):
        build_config("cgan", overrides=[{"tech": {"pack": 2}}])
    with pytest.raises(GankitError, match="needs a BCE loss"):
        build_config("ssgan", overrides=[{"loss": {"name": "wgan-gp"}}])
