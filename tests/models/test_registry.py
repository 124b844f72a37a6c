"""Every network the registries can build takes a forward pass, a backward pass and one step of every
registered optimizer: the (G, D) pairs of gankit.models.MODELS and every GENERATORS x DISCRIMINATORS pairing,
each labelled mode of gankit.conditioning.MODES around each of them, and each image-to-image family of
gankit.models.translation.TRANSLATORS. The test ids are the registry names, so a model, mode, family or
optimizer registered tomorrow is tested here without a line added.

What one step checks: the output shapes; a finite scalar loss whose gradient reaches every parameter (a
parameter no loss reaches is dead weight or a wiring bug); the step of each parameter is the optimizer's own
update rule (OPTIMIZERS[name].rule, the rule unrolled D follows) from zero moments; the weights stay finite and
every network moved. Combinations the registry refuses (conv networks on 2-D points) must be refused with a
GankitError that says what to use instead, not crash."""
from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.conditioning import MODES, mode_of
from gankit.config import CondConfig, Config, I2IConfig, ModelConfig, OptimConfig
from gankit.errors import GankitError
from gankit.losses import OBJECTIVES
from gankit.models import DISCRIMINATORS, GENERATORS, MODELS, build_models
from gankit.models.translation import TRANSLATORS, build_translators
from gankit.training.optimizers import OPTIMIZERS, make_optimizer

from ..conftest import TINY_MODEL

TINY = ModelConfig(**TINY_MODEL)  # width 8, hidden sizes 16, z of 8
SHAPES = {"grey28": (1, 28, 28), "rgb32": (3, 32, 32), "points": (2,)}  # MNIST-like, CIFAR-like, ring and grid
N, K = 4, 3  # batch size; classes of the labelled modes
LR = 1e-3
OBJ = OBJECTIVES.get("nonsat")
# beyond each mode's defaults: the variants that build other networks (one-hot D, conditional BN, G's own head)
COND = CondConfig(embed_dim=4, cat_codes=[3], cont_codes=1)
VARIANTS = {"cgan": [{"d": "concat"}, {"g": "cbn"}], "acgan": [{"g_classifier": True}]}


def refusal(cfg: ModelConfig, shape: tuple) -> str | None:
    """The GankitError build_models raises for this model and data shape, or None where it builds."""
    with torch.random.fork_rng():  # at collection: leave the global RNG as the other tests expect it
        try:
            build_models(cfg, shape)  # width 8: a few milliseconds
        except GankitError as e:
            return str(e)
    return None


def cases(configs: dict[str, ModelConfig], shapes: dict[str, tuple] = SHAPES) -> tuple[list, list]:
    """(allowed, refused) pytest params of (ModelConfig, shape), ids 'name-shape'."""
    allowed, refused = [], []
    for (name, cfg), (sname, shape) in itertools.product(configs.items(), shapes.items()):
        (refused if refusal(cfg, shape) else allowed).append(pytest.param(cfg, shape, id=f"{name}-{sname}"))
    return allowed, refused


NAMED = {name: dataclasses.replace(TINY, name=name) for name in MODELS.names()}
PAIRS = {f"{g}+{d}": dataclasses.replace(TINY, g=g, d=d) for g in GENERATORS.names() for d in DISCRIMINATORS.names()}
NAMED_OK, NAMED_REFUSED = cases(NAMED)
PAIRS_OK, PAIRS_REFUSED = cases(PAIRS)
MODE_SHAPES = {k: SHAPES[k] for k in ("grey28", "points")}
MODE_OK, MODE_REFUSED = cases(NAMED, MODE_SHAPES)
CONDS = [pytest.param(dataclasses.replace(COND, mode=mode, **extra),
                      id=mode + "".join(f"-{k}={v}" for k, v in extra.items()))
         for mode in MODES.names() for extra in [{}] + VARIANTS.get(mode, [])]
optimizers = pytest.mark.parametrize("optimizer", OPTIMIZERS.names())


def step_and_check(nets: dict[str, nn.Module], loss: torch.Tensor, optimizer: str) -> None:
    """Backward `loss`, then one step of `optimizer` (made by make_optimizer, one per network, as a run does)."""
    assert loss.dim() == 0 and torch.isfinite(loss), loss
    params = {f"{n}.{k}": p for n, net in nets.items() for k, p in net.named_parameters()}
    before = {k: p.detach().clone() for k, p in params.items()}
    opts = [make_optimizer(net.parameters(), OptimConfig(optimizer=optimizer), LR) for net in nets.values()]
    loss.backward()
    unreached = [k for k, p in params.items() if p.grad is None]
    assert not unreached, f"the loss does not reach {unreached}"
    assert all(torch.isfinite(p.grad).all() for p in params.values())
    for opt in opts:
        opt.step()
    rule, group = OPTIMIZERS.get(optimizer).rule, opts[0].param_groups[0]
    for k, p in params.items():
        assert torch.isfinite(p).all(), k
        # the first step from zero moments (Adam: about lr * sign(g), RMSprop: about 10 lr * sign(g), SGD: lr * g).
        # Compared where |g| > 1e-4: the rule keeps 1e-16 under the square root (differentiable at 0), which
        # moves the step of smaller gradients, e.g. of the biases that a BatchNorm right after them cancels
        big = p.grad.abs() > 1e-4
        assert_close((before[k] - p.detach())[big], rule(group, p.grad, 0.0, 0.0, 0.0)[0][big], rtol=1e-3,
                     atol=1e-3 * LR, msg=lambda m, k=k: f"{k}: {m}")
    for n, net in nets.items():
        assert any(not torch.equal(p, before[f"{n}.{k}"]) for k, p in net.named_parameters()), f"{n} did not move"


def unconditional_step(cfg: ModelConfig, shape: tuple, optimizer: str) -> None:
    torch.manual_seed(0)
    G, D = build_models(cfg, shape)
    fake = G(torch.randn(N, cfg.latent_dim))
    assert fake.shape == (N, *shape)
    real = torch.rand(N, *shape) * 2 - 1
    out_real, out_fake, out_g = D(real), D(fake.detach()), D(fake)
    assert out_real.shape == out_fake.shape == (N,)
    loss = sum(OBJ.d(out_real, out_fake)) + OBJ.g(out_g)
    step_and_check({"G": G, "D": D}, loss, optimizer)


@optimizers
@pytest.mark.parametrize("cfg, shape", NAMED_OK)
def test_every_registered_model_trains_one_step(cfg, shape, optimizer):
    unconditional_step(cfg, shape, optimizer)


@optimizers
@pytest.mark.parametrize("cfg, shape", PAIRS_OK)
def test_every_generator_discriminator_pairing_trains_one_step(cfg, shape, optimizer):
    unconditional_step(cfg, shape, optimizer)


@pytest.mark.parametrize("cfg, shape", NAMED_REFUSED + PAIRS_REFUSED)
def test_what_the_registry_refuses_is_a_clear_error(cfg, shape):
    with pytest.raises(GankitError, match="needs images but the data are 2-D points; use --model gan-mlp or r3gan-mlp"):
        build_models(cfg, shape)


@optimizers
@pytest.mark.parametrize("cfg, shape", MODE_OK)
@pytest.mark.parametrize("cond", CONDS)
def test_every_labelled_mode_trains_one_step(cond, cfg, shape, optimizer):
    """The mode's own generate / judge / extra losses, as the training step asks them."""
    torch.manual_seed(0)
    mode = mode_of(cond, K)
    if cond.g == "cbn" and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in build_models(cfg, shape)[0].modules()):
        with pytest.raises(GankitError, match="conditional BatchNorm needs a generator with BatchNorm layers"):
            mode.build(cfg, shape)  # a normalisation-free G (R3GAN) has nothing to condition
        return
    G, D = mode.build(cfg, shape)
    z, y_fake, y_real = torch.randn(N, cfg.latent_dim), mode.sample(N), mode.sample(N)
    real = torch.rand(N, *shape) * 2 - 1
    fake, g_logits = mode.generate_for_g_step(G, z, y_fake)
    assert fake.shape == (N, *shape)
    (out_real, aux_real), (out_fake, aux_fake) = mode.judge(D, real, y_real), mode.judge(D, fake.detach(), y_fake)
    out_g, aux_g = mode.judge(D, fake, y_fake)
    assert out_real.shape == out_fake.shape == (N,)
    assert all(a is None or a.shape[0] == N for a in (aux_real, aux_fake, aux_g))
    loss = (sum(OBJ.d(out_real, out_fake)) + sum(mode.d_extra(aux_real, aux_fake, y_real, y_fake).values())
            + OBJ.g(out_g) + sum(mode.g_extra(D, fake, aux_g, y_fake, g_logits).values()))
    step_and_check({"G": G, "D": D}, loss, optimizer)


@pytest.mark.parametrize("mode", MODES.names())
def test_labelled_modes_refuse_what_their_model_refuses(mode):
    """The modes that wrap G and D themselves used to skip the check and crash with an IndexError."""
    assert MODE_REFUSED, "conv networks on 2-D points are refused"
    for case in MODE_REFUSED:
        cfg, shape = case.values
        with pytest.raises(GankitError, match="needs images but the data are 2-D points; use --model gan-mlp"):
            mode_of(dataclasses.replace(COND, mode=mode), K).build(cfg, shape)


@optimizers
@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
@pytest.mark.parametrize("family", TRANSLATORS.names())
def test_every_translation_family_trains_one_step(family, channels, optimizer):
    """Each generator translates a 16-px batch to the same shape; each D maps what it judges to a [N,1,h,w]
    map of patch logits (a paired family's D judges (input, output) pairs, an unpaired one's single images)."""
    torch.manual_seed(0)
    cfg = Config(model=dataclasses.replace(TINY, name=family), i2i=I2IConfig(patch_layers=1, res_blocks=1))
    nets = build_translators(cfg, channels, 16)
    kind = TRANSLATORS.get(family)
    generators = sorted(set(kind.directions.values()))
    assert set(generators) < set(nets), "every family has at least one discriminator"
    x = torch.rand(N, channels, 16, 16) * 2 - 1
    outs = {g: nets[g](x) for g in generators}
    assert all(o.shape == x.shape for o in outs.values())
    loss = sum((o - x).abs().mean() for o in outs.values())  # the L1 / cycle terms
    for name in sorted(set(nets) - set(generators)):
        for o in outs.values():
            patches = nets[name](torch.cat([x, o], 1) if kind.paired else o)
            assert patches.dim() == 4 and patches.shape[:2] == (N, 1), (name, patches.shape)
            loss = loss + (patches - 1).pow(2).mean()  # least squares, as CycleGAN's G loss
    step_and_check(nets, loss, optimizer)
