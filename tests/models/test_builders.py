"""The (G, D) pairs of the model registry: shapes, architectures, errors."""

import pytest
import torch
from torch import nn

from gankit.config import ModelConfig
from gankit.errors import GankitError
from gankit.models import MODELS, build_models
from gankit.models.layers import SpatialDropout

SMALL = dict(g_width=8, d_width=8, latent_dim=16, attention_hidden=8, dropout=0.2)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 64, 64)])
def test_every_model_maps_z_to_images_and_images_to_logits(name, shape):
    cfg = ModelConfig(name=name, **SMALL)
    G, D = build_models(cfg, shape)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert D(x).shape == (4,)


@pytest.mark.parametrize("d", ["mlp", "attention"])
def test_point_data_models(d):
    G, D = build_models(ModelConfig(name="gan-mlp", d=d, g_hidden=[16], d_hidden=[16], latent_dim=4,
                                    attention_hidden=8), (2,))
    pts = G(torch.randn(5, 4))
    assert pts.shape == (5, 2) and D(pts).shape == (5,)


def test_conv_models_refuse_points():
    with pytest.raises(GankitError, match="use --model gan-mlp"):
        build_models(ModelConfig(name="dcgan"), (2,))


def test_textbook_mlp_architecture():
    G, D = build_models(ModelConfig(name="gan-mlp", latent_dim=100), (1, 28, 28))
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 3  # all hidden layers but the first
    assert [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, nn.Linear)] == [
        (784, 512), (512, 256), (256, 1)]
    assert all(m.negative_slope == 0.2 for m in G.modules() if isinstance(m, nn.LeakyReLU))


def test_random_residual_blocks_stay_random_at_sampling():
    G, _ = build_models(ModelConfig(name="resnet-rrb", **SMALL), (1, 28, 28))
    G.eval()
    z = torch.randn(2, 16)
    assert not torch.equal(G(z), G(z))  # spatial dropout still active in eval mode
    for m in G.modules():
        if isinstance(m, SpatialDropout):
            m.at_sampling = False
    assert torch.equal(G(z), G(z))


def test_attention_discriminator_concatenates_gated_and_ungated_features():
    _, D = build_models(ModelConfig(name="dcgan-attn", **SMALL), (1, 28, 28))
    D.eval()
    f = D.features(torch.randn(3, 1, 28, 28))
    assert f.shape == (3, 16)
    ungated, gated = f[:, :8], f[:, 8:]
    gate = D.gate(ungated)
    assert torch.allclose(gated, gate * ungated) and gate.min() > 0 and gate.max() < 1
    assert D.head.net[-1].in_features == 16


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(GankitError, match="unknown model 'dcgna'; available: dcgan, dcgan-attn, gan-mlp"):
        build_models(ModelConfig(name="dcgna"), (1, 28, 28))
