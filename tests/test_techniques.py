import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.config import TechConfig, build_config
from gankit.errors import GankitError
from gankit.losses import r1_penalty
from gankit.losses.adversarial import bce_d, bce_d_targets
from gankit.training.techniques import apply_spectral_norm, cutout, gate_closed, make_view, translation

from .conftest import tiny_config


def test_one_sided_label_smoothing_by_hand():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    r, f = bce_d_targets(real, fake, real_target=0.9)
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert_close(r, torch.tensor(-(0.9 * math.log(s(2.0)) + 0.1 * math.log(1 - s(2.0)))))
    assert_close(f, torch.tensor(-math.log(1 - s(-1.0))))  # one-sided: fakes keep target 0
    assert_close(bce_d_targets(real, fake), bce_d(real, fake))  # no smoothing = plain BCE


def test_label_flipping_flips_about_the_asked_share():
    real = torch.full((20000,), 10.0)  # D is sure these are real
    r, _ = bce_d_targets(real, torch.zeros(1), flip=0.1, generator=torch.Generator().manual_seed(0))
    # a flipped label costs ~10 nats, a kept one ~0: the mean loss is ~10 x the flipped share
    assert 0.09 < r.item() / 10 < 0.11


def test_r1_of_a_linear_critic():
    D = nn.Sequential(nn.Flatten(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))
    assert_close(r1_penalty(D, torch.randn(5, 3)), torch.tensor(9.0))  # ||w||^2


def test_spectral_norm_bounds_each_layer():
    D = apply_spectral_norm(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)))
    D.train()
    for _ in range(20):  # power iterations converge while training
        D(torch.randn(4, 8))
    D.eval()
    for m in D:
        if isinstance(m, nn.Linear):
            assert torch.linalg.matrix_norm(m.weight.detach(), ord=2) == pytest.approx(1.0, abs=0.05)


def test_translation_shifts_and_pads_with_zeros():
    x = torch.ones(64, 1, 16, 16)
    y = translation(x)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 1.0}
    zero_rows = (y == 0).flatten(1).sum(1)
    assert (zero_rows > 0).any() and (zero_rows <= 16 * 16 - 14 * 14).all()  # at most 2 px each way


def test_cutout_zeroes_one_square():
    y = cutout(torch.ones(32, 3, 16, 16))
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 8 * 8).all() and (zeros == 64).any()
    assert torch.equal(y[:, 0], y[:, 2])  # the same square in every channel


def test_instance_noise_anneals_to_zero():
    tech = TechConfig(instance_noise=0.5, instance_noise_steps=100)
    x = torch.zeros(10000)
    assert make_view(tech, 0)(x).std().item() == pytest.approx(0.5, rel=0.05)
    assert make_view(tech, 50)(x).std().item() == pytest.approx(0.25, rel=0.05)
    assert make_view(tech, 100) is None and make_view(TechConfig(), 0) is None


def test_generator_gate():
    tech = TechConfig(g_gate=0.5)
    assert gate_closed(tech, {"d_real": torch.tensor(0.9), "d_fake": torch.tensor(0.1)})
    assert not gate_closed(tech, {"d_real": torch.tensor(0.6), "d_fake": torch.tensor(0.4)})
    assert not gate_closed(TechConfig(), {"d_real": torch.tensor(1.0), "d_fake": torch.tensor(0.0)})


def test_validation_of_technique_switches():
    with pytest.raises(GankitError, match="need a BCE loss"):
        build_config("wgan-gp", overrides=[{"tech": {"label_smoothing": 0.9}}])
    with pytest.raises(GankitError, match="unknown DiffAugment policy 'rotate'"):
        build_config(overrides=[{"tech": {"diffaugment": "color,rotate"}}])


def test_all_switches_train_together_and_the_gate_is_logged(tmp_path, idx_dir):
    import json
    from pathlib import Path

    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, steps=6,
                      tech={"label_smoothing": 0.9, "label_flip": 0.05, "instance_noise": 0.1,
                            "spectral_norm": True, "r1_gamma": 1.0, "g_gate": -1.0,
                            "diffaugment": "translation,cutout,color"},
                      train={"ema_decay": 0.9})
    run = Path(gankit.train(cfg, quiet=True)["run"])
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # a gate at -1 is always closed, but it closes for at most g_gate_max_skips (5) G updates in a row:
    # steps 1-5 skip G, step 6 updates it (a gate that never reopens would freeze G for good)
    assert [r["g_skipped"] for r in rows] == [1, 2, 3, 4, 5, 5]
    assert "r1" in rows[-1] and all(math.isfinite(r["loss_d"]) for r in rows)
    gankit.sample(run, 4, tmp_path / "s.png")  # G rebuilds without D's spectral-norm parametrization


def test_pacgan_packs_samples_into_one_d_input(tmp_path):
    from gankit.training.techniques import pack

    x = torch.arange(4 * 2.0).view(4, 2)
    assert torch.equal(pack(x, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    img = torch.randn(6, 1, 8, 8)
    assert torch.equal(pack(img, 3)[1, 2], img[5, 0])  # [N/m, m*C, H, W]
    cfg = tiny_config("toy", tmp_path / "run", dataset="ring", tech={"pack": 4})
    from gankit.training.gan import GanRecipe
    s = GanRecipe(cfg)
    assert s.D.net[1].in_features == 2 * 4
    assert gankit.train(cfg, quiet=True)["steps"] == 4


def test_minibatch_std_and_discrimination_layers():
    from gankit.models.layers import MinibatchDiscrimination, MinibatchStd

    x = torch.tensor([[0.0, 2.0], [2.0, 4.0]])
    out = MinibatchStd()(x)
    assert_close(out[:, 2], torch.tensor([1.0, 1.0]))  # std of each feature is 1, averaged
    mbd = MinibatchDiscrimination(3, kernels=5)
    same = mbd(torch.ones(4, 3))
    assert same.shape == (4, 8)
    assert_close(same[:, 3:], torch.full((4, 5), 3.0))  # identical samples: each sees N-1 = 3 close neighbours
    apart = mbd(torch.randn(4, 3) * 100)[:, 3:]
    assert (apart < 0.5).all()


def test_experience_replay_mixes_old_fakes():
    from gankit.training.techniques import ReplayBuffer

    buf = ReplayBuffer(size=8, ratio=0.5, shape=(2,))
    first = torch.ones(4, 2)
    assert torch.equal(buf.mix(first)[0], first)  # empty buffer: nothing to replay yet
    second = buf.mix(torch.zeros(4, 2))[0]
    assert torch.equal(second[:2], torch.ones(2, 2)) and torch.equal(second[2:], torch.zeros(2, 2))
    assert int(buf.count) == 8


def test_historical_averaging_penalises_distance_to_the_mean_of_past_weights():
    from gankit.training.techniques import HistoricalAverage

    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ha = HistoricalAverage(net)
    assert ha.penalty().item() == 0.0
    with torch.no_grad():
        net.weight.fill_(3.0)
    ha.update()  # mean of past weights (1, 3) = 2
    assert ha.averages()[0].item() == 2.0 and ha.penalty().item() == 1.0


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
    added = g_step(G, D, opt, Batch(real, torch.randn(16, 4)), nonsat, Extras(feature_matching="add"))
    assert added["loss_g"] > added["fm"]


def test_resume_is_exact_with_stateful_techniques(tmp_path, idx_dir):
    from gankit.run import list_step_checkpoints, load_file

    tech = {"replay_size": 32, "replay_ratio": 0.5, "historical_averaging": 0.01, "instance_noise": 0.1,
            "feature_matching": "add", "pack": 2}
    model = {"minibatch_std": True, "minibatch_discrimination": 4}
    straight = gankit.train(tiny_config("dcgan", tmp_path / "a", data_dir=idx_dir, steps=8, tech=tech,
                                        model=model), quiet=True)
    gankit.train(tiny_config("dcgan", tmp_path / "b", data_dir=idx_dir, steps=4, tech=tech, model=model), quiet=True)
    resumed = gankit.resume(tmp_path / "b", {"max_steps": 8}, quiet=True)
    a = load_file(list_step_checkpoints(Path(straight["run"]))[0])
    b = load_file(list_step_checkpoints(Path(resumed["run"]))[0])
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    assert torch.equal(a["extra"]["tech"]["replay"]["items"], b["extra"]["tech"]["replay"]["items"])


def test_virtual_batchnorm_makes_each_sample_independent_of_its_batch(tmp_path, idx_dir):
    from gankit.config import ModelConfig
    from gankit.models import build_models
    from gankit.models.layers import VirtualBatchNorm

    torch.manual_seed(0)
    cfg = ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8)
    plain, _ = build_models(cfg, (1, 28, 28))
    torch.manual_seed(0)
    G, _ = build_models(ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8, virtual_batchnorm=True,
                                    virtual_batch_size=16), (1, 28, 28))
    assert any(isinstance(m, VirtualBatchNorm) for m in G.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    z = torch.randn(6, 8)
    # with BatchNorm an image depends on its batch companions; with VBN it does not (train mode both)
    assert not torch.allclose(plain(z)[:1], plain(torch.cat([z[:1], -z[1:]]))[:1], atol=1e-4)
    assert_close(G(z)[:1], G(torch.cat([z[:1], -z[1:]]))[:1])
    assert_close(G(z)[:1], G(z[:1]))
    # the reference statistics come from the reference batch: new reference codes change the output
    before = G(z[:1]).detach()
    G.ref_z.normal_()
    assert not torch.allclose(G(z[:1]), before, atol=1e-4)
    # a run with it trains, saves its reference codes and samples again
    run = Path(gankit.train(tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir,
                                        model={"virtual_batchnorm": True, "virtual_batch_size": 8}),
                            quiet=True)["run"])
    gankit.sample(run, 4, tmp_path / "s.png")
    mlp = tiny_config("gan-mlp", tmp_path / "toy", dataset="ring", model={"virtual_batchnorm": True})
    gankit.train(mlp, quiet=True)


def test_virtual_batchnorm_needs_batchnorm_in_g():
    from gankit.config import ModelConfig
    from gankit.models import build_models

    with pytest.raises(GankitError, match="g_batchnorm=true"):
        build_models(ModelConfig(name="dcgan", g_width=8, d_width=8, latent_dim=8, g_batchnorm=False,
                                 virtual_batchnorm=True), (1, 28, 28))


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_unrolled_d_follows_ds_optimizer_and_leaves_d_untouched(optimizer):
    import copy

    from gankit.config import OptimConfig
    from gankit.losses import OBJECTIVES
    from gankit.training.setup import make_optimizer
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


def test_unrolled_gan_trains_with_spectral_norm_and_batchnorm(tmp_path, idx_dir):
    cfg = tiny_config("dcgan", tmp_path / "run", data_dir=idx_dir, tech={"unrolled_steps": 2, "spectral_norm": True})
    assert gankit.train(cfg, quiet=True)["steps"] == 4


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
        assert e.prec.scaler_d.get_scale() < 2.0 ** 16  # overflowing steps lowered the scale
