"""The D and G steps (gankit.training.steps): feature matching, unrolled D, mixed precision."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close


def test_feature_matching_only_is_the_g_objective():
    from gankit.config import ModelConfig
    from gankit.losses import OBJECTIVES
    from gankit.models import build_models
    from gankit.training.steps import Batch, Extras, g_step

    torch.manual_seed(0)
    G, D = build_models(ModelConfig(name="gan-mlp", g_hidden=[8], d_hidden=[8], latent_dim=4), (2,))
    opt = torch.optim.SGD(G.parameters(), lr=0.0)
    real = torch.randn(16, 2)
    nonsat = OBJECTIVES.get("nonsat")
    stats = g_step(G, D, opt, Batch(real, torch.randn(16, 4)), nonsat, Extras(feature_matching="only"))
    assert_close(stats["loss_g"], stats["fm"])
    z = torch.randn(16, 4)
    added = g_step(G, D, opt, Batch(real, z), nonsat, Extras(feature_matching="add"))
    # "add": the non-saturating loss on D(G(z)) plus the feature term (lr 0: G is still the G that made the fakes)
    with torch.no_grad():
        assert_close(added["loss_g"], nonsat.g(D(G(z))) + added["fm"])
    assert_close(added["loss_g"], torch.tensor(0.9145), rtol=1e-3, atol=0)  # the seeded value: 0.6910 + 0.2235


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_unrolled_d_follows_ds_optimizer_and_leaves_d_untouched(optimizer):
    import copy

    from gankit.config import OptimConfig
    from gankit.losses import OBJECTIVES
    from gankit.training.optimizers import make_optimizer
    from gankit.training.steps import Batch, Extras, d_step, g_step, unrolled_d

    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    ocfg = OptimConfig(optimizer=optimizer, lr_d=1e-2, momentum=0.0)
    opt_d = make_optimizer(D.parameters(), ocfg, 1e-2)
    obj = OBJECTIVES.get("nonsat")
    real, z = torch.randn(32, 2) + 2, torch.randn(32, 4)
    d_step(G, D, opt_d, Batch(real, z), obj)  # the optimizer now has state (moments, step count)
    fake = G(z).detach()
    # reference: K real optimizer steps on a copy, on the same batches
    D2 = copy.deepcopy(D)
    opt2 = make_optimizer(D2.parameters(), ocfg, 1e-2)
    opt2.load_state_dict(copy.deepcopy(opt_d.state_dict()))  # load_state_dict shares tensors
    for _ in range(3):
        r, f = obj.d(D2(real), D2(fake))
        opt2.zero_grad()
        (r + f).backward()
        opt2.step()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    unrolled = unrolled_d(D, opt_d, real, fake, obj, 3)
    for name, p in D2.named_parameters():
        assert_close(unrolled[name].detach(), p.detach(), atol=1e-5, rtol=1e-4)
    # the G step through the unrolled D: D unchanged, G's gradient differs from the plain G step
    opt_g = torch.optim.SGD(G.parameters(), lr=0.0)
    g_step(G, D, opt_g, Batch(real, z), obj, Extras(unrolled_steps=3, opt_d=opt_d))
    grad_unrolled = [p.grad.clone() for p in G.parameters()]
    g_step(G, D, opt_g, Batch(real, z), obj, Extras())
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in before.items())
    assert any(not torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(grad_unrolled, G.parameters()))


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_mixed_precision_steps_update_both_networks(mode):
    """The autocast + gradient-scaler path of the steps (run on CPU here; `train.amp` itself needs CUDA)."""
    from gankit.losses import OBJECTIVES
    from gankit.training.precision import Precision
    from gankit.training.steps import Batch, Extras, d_step, g_step

    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    opt_d, opt_g = torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())
    e = Extras(prec=Precision(mode, torch.device("cpu")))
    d0, g0 = [p.clone() for p in D.parameters()], [p.clone() for p in G.parameters()]
    for _ in range(30):  # fp16: the first steps overflow at scale 2^16 and are skipped while the scale falls
        ds = d_step(G, D, opt_d, Batch(torch.randn(16, 2), torch.randn(16, 4)), OBJECTIVES.get("wgan-gp"), e=e)
        gs = g_step(G, D, opt_g, Batch(torch.randn(16, 2), torch.randn(16, 4)), OBJECTIVES.get("wgan-gp"), e)
        assert all(torch.isfinite(v).all() for v in (*ds.values(), *gs.values()))
    assert ds["gp"].dtype == torch.float32 and ds["d_real"].dtype == torch.float32
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    if mode == "fp16":
        # the seeded run: one overflowing D step halved D's scale (backoff 0.5; regrowth takes 2000 good steps);
        # G's scaled gradients never overflowed
        assert e.prec.scaler_d.get_scale() == 2.0 ** 15 and e.prec.scaler_g.get_scale() == 2.0 ** 16


def test_amp_auto_is_float32_on_the_cpu_and_bf16_only_where_a_gpu_has_it(monkeypatch):
    """train.amp=auto (the r3gan preset): no autocast on the CPU (bf16 there is slow and not what R3GAN ran);
    bf16 on a CUDA device that supports it, float32 on one that does not."""
    from gankit.training.precision import Precision, resolve

    cpu = Precision("auto", torch.device("cpu"))
    assert cpu.mode == "off" and not cpu.enabled
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve("auto", torch.device("cuda")) == "off"
    assert resolve("fp16", torch.device("cpu")) == "fp16"  # explicit modes are left to the recipe's check
