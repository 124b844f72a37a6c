"""R3GAN networks (Huang et al. 2024): fix-up initialised residual blocks, [1, 2, 1] resampling, the generative
basis and D's depthwise head, sizes from the data, one training step, class conditioning through cgan."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.conditioning import mode_of
from gankit.config import CondConfig, ModelConfig
from gankit.losses import OBJECTIVES
from gankit.models import build_models
from gankit.models.r3gan import (
    R3GANDiscriminator,
    R3GANHead,
    Resample,
    ResidualBlock,
    conv_block,
    dense_block,
    group_count,
    resample_filter,
)

TINY = ModelConfig(name="r3gan", g_width=8, d_width=8, latent_dim=8, r3gan_blocks=1, r3gan_group_size=4)
OBJ = OBJECTIVES.get("nonsat")


def test_residual_blocks_are_the_identity_at_initialisation():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 7, 7)
    block = conv_block(16, 2, 4, total_blocks=6)
    assert torch.equal(block(x), x)
    pts = torch.randn(3, 32)
    assert torch.equal(dense_block(32, 3, total_blocks=2)(pts), pts)
    G, D = build_models(dataclasses.replace(TINY, r3gan_blocks=2), (3, 32, 32))
    blocks = [m for net in (G, D) for m in net.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 2 * 2 * 4  # G and D, 2 blocks in each of 4 stages (4, 8, 16, 32 px)
    for b in blocks:
        h = torch.randn(2, b.net[0].in_channels, 4, 4)
        assert torch.equal(b(h), h)


def test_fixup_scales_by_the_number_of_blocks_and_zeroes_the_last_conv():
    torch.manual_seed(0)
    one = conv_block(16, 2, 4, total_blocks=1)
    torch.manual_seed(0)
    sixteen = conv_block(16, 2, 4, total_blocks=16)
    for i in (0, 2):  # the first 1x1 and the grouped 3x3 conv: L^-0.25 = 1/2 for L = 16
        torch.testing.assert_close(sixteen.net[i].weight, one.net[i].weight * 0.5)
    assert not sixteen.net[4].weight.any() and sixteen.net[4].bias is None
    assert [type(m) for m in one.net] == [nn.Conv2d, nn.LeakyReLU, nn.Conv2d, nn.LeakyReLU, nn.Conv2d]
    assert one.net[1].negative_slope == 0.2
    first, middle, last = one.net[0], one.net[2], one.net[4]
    assert (first.in_channels, first.out_channels, first.kernel_size) == (16, 32, (1, 1))  # expansion 2
    assert (middle.kernel_size, middle.groups) == ((3, 3), 8)  # groups of 4 channels
    assert (last.out_channels, last.kernel_size) == (16, (1, 1))
    assert group_count(24, 16) == 1 and group_count(64, 16) == 4 and group_count(48, 32) == 1


def test_no_normalisation_layers():
    G, D = build_models(ModelConfig(name="r3gan"), (3, 32, 32))
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)
    assert not any(isinstance(m, norms) for net in (G, D) for m in net.modules())


def test_resampling_filter_is_the_normalised_binomial():
    k = resample_filter()
    expected = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    assert torch.equal(k, expected) and k.sum() == 1


@pytest.mark.parametrize("size", [7, 8, 14])
def test_resampling_keeps_a_constant_image_constant(size):
    x = torch.full((2, 3, size, size), 0.37)
    up = Resample(up=True)(x)
    assert up.shape == (2, 3, 2 * size, 2 * size)
    torch.testing.assert_close(up, torch.full_like(up, 0.37))
    if size % 2 == 0:
        down = Resample(up=False)(x)
        assert down.shape == (2, 3, size // 2, size // 2)
        torch.testing.assert_close(down, torch.full_like(down, 0.37))


def test_upsampling_is_bilinear_and_downsampling_filters_before_striding():
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(Resample(up=True)(x), F.interpolate(x, scale_factor=2, mode="bilinear"))
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), resample_filter().expand(3, 1, 3, 3), groups=3)
    torch.testing.assert_close(Resample(up=False)(x), blurred[:, :, ::2, ::2])


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)])
def test_output_shapes_follow_the_data(shape):
    torch.manual_seed(0)
    G, D = build_models(TINY, shape)
    x = G(torch.randn(4, TINY.latent_dim))
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    s0 = 7 if shape[1] == 28 else 4
    assert G.basis.basis.shape[1:] == (s0, s0)  # 28 px starts from a 7x7 basis
    f = D.features(x)
    assert f.shape[2:] == (s0, s0) and D.head(f).shape == D(x).shape == (4,)
    depthwise = D.head.net[0]
    assert depthwise.kernel_size == (s0, s0) and depthwise.groups == depthwise.in_channels == f.shape[1]


def test_points_use_the_mlp_variant():
    G, D = build_models(dataclasses.replace(TINY, name="r3gan-mlp"), (2,))
    pts = G(torch.randn(5, TINY.latent_dim))
    assert pts.shape == (5, 2) and D(pts).shape == (5,) and D.features(pts).shape == (5, TINY.d_width)


def test_minibatch_layers_join_the_head():
    D = R3GANDiscriminator((1, 28, 28), width=8, blocks=1, group_size=4, minibatch_std=True, mbd_kernels=3)
    assert D(torch.randn(4, 1, 28, 28)).shape == (4,)
    assert isinstance(D.head, R3GANHead) and D.head.net[1].groups == 8 * 2 + 1


def one_step(G: nn.Module, D: nn.Module, fake: torch.Tensor, loss: torch.Tensor) -> None:
    params = {f"{n}.{k}": p for n, net in (("G", G), ("D", D)) for k, p in net.named_parameters()}
    before = {k: p.detach().clone() for k, p in params.items()}
    opt = torch.optim.Adam(list(G.parameters()) + list(D.parameters()), lr=1e-3)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert all(torch.isfinite(p).all() for p in params.values())
    for n in ("G", "D"):
        assert any(not torch.equal(p, before[k]) for k, p in params.items() if k.startswith(n)), f"{n} did not move"


@pytest.mark.parametrize("name, shape", [("r3gan", (1, 28, 28)), ("r3gan", (3, 32, 32)), ("r3gan-mlp", (2,))])
def test_one_training_step(name, shape):
    torch.manual_seed(0)
    G, D = build_models(dataclasses.replace(TINY, name=name), shape)
    fake = G(torch.randn(4, TINY.latent_dim))
    real = torch.rand(4, *shape) * 2 - 1
    loss = sum(OBJ.d(D(real), D(fake.detach()))) + OBJ.g(D(fake))
    one_step(G, D, fake, loss)


def test_r1_penalty_differentiates_twice():
    torch.manual_seed(0)
    _, D = build_models(TINY, (1, 28, 28))
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    weights = [p for k, p in D.named_parameters() if k.endswith("weight")]  # biases leave dD/dx unchanged
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in weights)


@pytest.mark.parametrize("d", ["projection", "concat"])
def test_cgan_wraps_r3gan(d):
    torch.manual_seed(0)
    K, shape = 3, (1, 28, 28)
    mode = mode_of(CondConfig(mode="cgan", d=d, embed_dim=4), K)
    G, D = mode.build(TINY, shape)
    y = mode.sample(4)
    fake = mode.generate(G, torch.randn(4, TINY.latent_dim), y)
    assert fake.shape == (4, *shape)
    (out_real, _), (out_fake, _) = mode.judge(D, torch.rand(4, *shape) * 2 - 1, y), mode.judge(D, fake.detach(), y)
    out_g, _ = mode.judge(D, fake, y)
    assert out_real.shape == (4,)
    one_step(G, D, fake, sum(OBJ.d(out_real, out_fake)) + OBJ.g(out_g))


def test_default_sizes_run_on_a_laptop():
    G, D = build_models(ModelConfig(name="r3gan"), (1, 28, 28))
    count = lambda net: sum(p.numel() for p in net.parameters())
    assert count(G) < 1_000_000 and count(D) < 1_000_000
