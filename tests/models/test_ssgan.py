"""The semi-supervised GAN's networks (models/ssgan.py): weight normalisation with data-dependent init, the
Gaussian-noise and dropout layers (active in train mode only), and the paper's architectures."""
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.conditioning import mode_of
from gankit.config import CondConfig, ModelConfig
from gankit.models import build_models
from gankit.models.ssgan import GaussianNoise, data_dependent_init_, is_weight_normalised, wn

PAPER = ModelConfig(name="ssgan-mlp", latent_dim=100, g_hidden=[500, 500], d_hidden=[1000, 500, 250, 250, 250])


def test_gaussian_noise_is_added_in_train_mode_only():
    torch.manual_seed(0)
    layer = GaussianNoise(0.5)
    x = torch.zeros(20_000)
    noisy = layer(x)
    assert noisy.std().item() == pytest.approx(0.5, rel=0.03) and noisy.mean().abs() < 0.02
    assert not torch.equal(layer(x), noisy)  # fresh noise at every call
    layer.eval()
    assert torch.equal(layer(x), x)


def test_fixed_length_weight_norm_trains_the_direction_only():
    """D's hidden layers (as in openai/improved-gan): the lengths are set by the init, then fixed."""
    torch.manual_seed(0)
    layer = wn(nn.Linear(5, 3))
    assert [n for n, _ in layer.named_parameters()] == ["bias", "parametrizations.weight.original"]
    lengths = layer.weight.norm(dim=1).detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(torch.randn(8, 5)).pow(2).sum().backward()
    before = layer.weight.detach().clone()
    opt.step()
    assert not torch.allclose(layer.weight, before)  # the direction moved...
    assert_close(layer.weight.norm(dim=1), lengths)  # ...each row kept its length


def test_weight_norm_separates_length_and_direction():
    torch.manual_seed(0)
    layer = wn(nn.Linear(5, 3), train_length=True)
    v = layer.parametrizations.weight.original1
    g = layer.parametrizations.weight.original0  # [3, 1]: one length per output unit
    assert_close(layer.weight.norm(dim=1), g.flatten())  # each row of W has length g
    x = torch.randn(4, 5)
    before = layer(x)
    with torch.no_grad():
        v.mul_(7.0)  # the direction's scale does not matter
    assert_close(layer(x), before)
    with torch.no_grad():
        g.mul_(2.0)  # the length does
    assert_close(layer(x) - layer.bias, 2 * (before - layer.bias))


def test_data_dependent_init_normalises_each_layer_on_the_batch():
    torch.manual_seed(0)
    _, D = mode_of(CondConfig(mode="ssgan"), 10).build(ModelConfig(name="ssgan-mlp", d_hidden=[64, 32]), (1, 28, 28))
    D.eval()  # no noise: the statistics below are those the init saw
    x = torch.rand(200, 1, 28, 28) * 2 - 1
    assert data_dependent_init_(D, x)
    layers = [m for m in D.modules() if is_weight_normalised(m)]
    assert len(layers) == 3  # two hidden layers and the K-way head
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, o)) for m in layers]
    D(x)
    for h in hooks:
        h.remove()
    for m, scale in zip(layers, (1.0, 1.0, 0.1)):  # the class logits start small
        assert_close(seen[m].mean(0), torch.zeros(m.out_features), atol=1e-4, rtol=0)
        assert_close(seen[m].std(0), torch.full((m.out_features,), scale), atol=1e-3, rtol=1e-3)
    _, plain = build_models(ModelConfig(name="gan-mlp"), (1, 28, 28))
    assert not data_dependent_init_(plain, x)  # nothing to initialise: nothing runs


def test_mlp_networks_are_the_papers():
    G, D = build_models(PAPER, (1, 28, 28))
    linears = [m for m in D.net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 1000), (1000, 500), (500, 250), (250, 250), (250, 250)]
    assert all(is_weight_normalised(m) for m in linears)
    noise = [m.sigma for m in D.modules() if isinstance(m, GaussianNoise)]
    assert noise == [0.3, 0.5, 0.5, 0.5, 0.5, 0.5]  # the input, after each hidden layer (the last in the head)
    _, K1 = mode_of(CondConfig(mode="ssgan"), 10).build(PAPER, (1, 28, 28))
    assert K1.aux[-1].out_features == 10 and is_weight_normalised(K1.aux[-1])
    g_lin = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_lin] == [(100, 500), (500, 500), (500, 784)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 2
    assert sum(isinstance(m, nn.Softplus) for m in G.modules()) == 2 and is_weight_normalised(g_lin[-1])
    x = G(torch.rand(8, 100))
    assert x.shape == (8, 1, 28, 28) and -1 <= x.min() and x.max() <= 1  # sigmoid, rescaled to [-1, 1]
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    assert not torch.equal(D(x), D(x))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_conv_networks_pool_their_features_and_drop_out_in_train_mode_only(shape):
    cfg = ModelConfig(name="ssgan-conv", g_width=8, d_width=8, latent_dim=16)
    G, D = build_models(cfg, shape)
    x = G(torch.rand(4, 16))
    assert x.shape == (4, *shape)
    assert D.features(x).shape == (4, 16)  # 2 x d_width channels, globally pooled
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in convs] == [(3, 3)] * 7 + [(1, 1)] * 2  # the last two: network-in-network
    assert [m.stride for m in convs].count((2, 2)) == 2 and all(is_weight_normalised(m) for m in convs)
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    assert not torch.equal(D(x), D(x))
