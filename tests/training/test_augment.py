"""Adaptive discriminator augmentation (training/augment.py): the ops, the controller, resume, the families."""
import json

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.cli import main
from gankit.config import TechConfig, build_config
from gankit.errors import GankitError
from gankit.training.augment import OPS, AdaptiveAugment, augment, mean_sign
from gankit.training.techniques import make_view

from ..conftest import TINY_I2I, assert_same_weights, newest_checkpoint, read_log, tiny_config

P = 0.9  # high enough that every op acts on most of a batch


def _image(n=16, c=3, s=16):
    torch.manual_seed(0)
    return torch.rand(n, c, s, s) * 2 - 1


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_the_shape_changes_images_and_passes_gradients(op):
    x = _image().requires_grad_(True)
    y = augment(x, P, (op,), channels=3)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y - x).flatten(1).abs().amax(1).gt(1e-4).sum() >= 4  # the op acted on several samples
    (y * torch.randn_like(y)).sum().backward()  # D's gradient reaches the images (and so G)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_with_p_zero_the_pipeline_is_the_identity():
    for c, channels in ((1, 1), (3, 3), (6, 3)):  # grey, colour, a Pix2Pix pair of colour images
        x = _image(c=c)
        assert torch.equal(augment(x, 0.0, OPS, channels), x)
    ada = AdaptiveAugment(TechConfig(ada_p=0.0, ada_ops=",".join(OPS)), (3, 16, 16), 16, torch.device("cpu"), 0.0)
    assert torch.equal(ada.view()(x[:, :3]), x[:, :3])


def _dihedral(x):
    """The 8 images a flip and a quarter-turn can make of x [C,H,W]."""
    rots = [torch.rot90(x, k, (1, 2)) for k in range(4)]
    return rots + [r.flip(2) for r in rots]


def test_flips_and_quarter_turns_only_move_pixels_and_identity_stays_most_likely():
    """Non-leaking: at p < 1 the untouched image is the most likely outcome (k ~ U{0..3} quarter-turns and a flip
    with probability 1/2, each drawn with probability p), so the augmented images still say which way is up."""
    torch.manual_seed(1)
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(4000, 1, 4, 4)
    p = 0.6
    y = augment(x, p, ("xflip", "rotate90"))
    options = torch.stack(_dihedral(x[0]))  # [8, 1, 4, 4]
    which = (y[:, None] == options[None]).flatten(2).all(2).float().argmax(1)  # [N] the transform each got
    assert (y[:, None] == options[None]).flatten(2).all(2).any(1).all()  # nothing but flips and quarter-turns
    share = torch.bincount(which, minlength=8).float() / len(y)
    identity = ((1 - p) + p / 4) * (1 - p / 2)  # no turn (none drawn, or k = 0) and no flip: 0.385
    assert share[0].item() == pytest.approx(identity, abs=0.03)
    assert share[0] > 2 * share[1:].max()


def test_translation_shifts_by_whole_pixels_with_reflect_padding():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 16, 16).expand(64, 2, 16, 16)
    y = augment(x, 0.99, ("translate",))
    rows = torch.tensor([abs(i) if i < 16 else 30 - i for i in range(-2, 18)])  # reflect: -1 -> 1, 16 -> 14
    shifts = set()
    for n in range(64):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(y[n], x[0][:, rows[2 - dy:18 - dy]][:, :, rows[2 - dx:18 - dx]])]
        assert found, f"sample {n} is not a shift of at most 2 px (1/8 of 16) with reflect padding"
        shifts.add(found[0])
    assert len(shifts) > 10  # shifts in every direction


def test_a_pix2pix_pair_moves_as_one_image():
    torch.manual_seed(3)
    a = torch.randn(32, 3, 8, 8)
    pair = torch.cat([a, a], 1)  # [A | B] with B = A: after the same transform the halves stay equal
    y = augment(pair, P, OPS, channels=3)
    assert not torch.equal(y, pair) and torch.equal(y[:, :3], y[:, 3:])


def test_saturation_leaves_grey_images_alone_and_keeps_the_grey_of_colour_ones():
    x = _image(c=1)
    assert torch.equal(augment(x, P, ("saturation",)), x)
    x = _image(c=3)
    y = augment(x, P, ("saturation",))
    assert not torch.equal(y, x)
    assert_close(y.mean(1), x.mean(1))  # only the colour around each pixel's grey changes


def test_ada_runs_before_diffaugment_and_packing():
    ada = AdaptiveAugment(TechConfig(ada_p=0.5), (1, 16, 16), 16, torch.device("cpu"), 0.0)
    view = ada.view(make_view(TechConfig(pack=2, diffaugment="translation"), 0))
    assert view(_image(c=1)).shape == (8, 2, 16, 16)  # 16 images packed in pairs after both augmentations


class ConstantD(nn.Module):
    """A fake D that answers the same logit for every image."""

    def __init__(self, logit: float):
        super().__init__()
        self.logit = logit

    def forward(self, x):
        return torch.full((len(x),), self.logit)


def test_the_controller_raises_p_above_the_target_and_lowers_it_below():
    tech = TechConfig(ada_target=0.6, ada_interval=4, ada_speed_images=1000)
    ada = AdaptiveAugment(tech, (1, 8, 8), 50, torch.device("cpu"), threshold=0.0)
    step = 50 * 4 / 1000  # p's move per adjustment: batch x interval / speed
    x = _image(c=1, s=8)
    for D, expected in ((ConstantD(3.0), [step, 2 * step, 3 * step]), (ConstantD(-3.0), [2 * step, step, 0.0, 0.0])):
        for want in expected:  # D calls every real image real (r_t = 1 > 0.6), then fake (r_t = -1 < 0.6)
            for _ in range(4):
                stats = ada.observe(mean_sign(D(ada(x)), ada.threshold))
            assert ada.p.item() == pytest.approx(want, abs=1e-6) and stats["ada_rt"].item() == (1.0 if D.logit > 0 else -1.0)
    for _ in range(4 * 200):  # always above the target: p stops short of 1
        ada.observe(torch.tensor(1.0))
    assert 0.99 < ada.p.item() < 1.0


def test_a_fixed_p_stays_and_r_t_is_still_measured():
    ada = AdaptiveAugment(TechConfig(ada_p=0.3, ada_interval=2), (1, 8, 8), 16, torch.device("cpu"), threshold=0.5)
    D = ConstantD(0.2)  # least squares: below 0.5 counts as "fake"
    for _ in range(6):
        stats = ada.observe(mean_sign(D(torch.zeros(4)), ada.threshold))
    assert stats["ada_p"].item() == pytest.approx(0.3) and stats["ada_rt"].item() == -1.0


def test_r1_is_computed_on_the_augmented_reals():
    from gankit.losses import OBJECTIVES
    from gankit.training.steps import Batch, Extras, d_step

    class Square(nn.Module):  # D(x) = sum w x^2: its gradient 2 w x depends on the image D saw
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.rand(1, 8, 8))

        def forward(self, x):
            return (self.w * x.pow(2)).flatten(1).sum(1)

    D, G = Square(), nn.Sequential(nn.Linear(4, 64), nn.Unflatten(1, (1, 8, 8)))
    ada = AdaptiveAugment(TechConfig(ada_p=0.9, ada_ops="contrast"), (1, 8, 8), 16, torch.device("cpu"), 0.0)
    real = _image(c=1, s=8)
    torch.manual_seed(5)
    stats = d_step(G, D, torch.optim.SGD(D.parameters(), lr=0.0), Batch(real, torch.randn(16, 4)),
                   OBJECTIVES.get("nonsat"), Extras(view=ada.view(), r1_gamma=1.0, rt_threshold=0.0))
    torch.manual_seed(5)
    torch.randn(16, 4)
    seen = ada(real)  # the first draw of the D step: the real batch as D saw it
    assert not torch.equal(seen, real)
    assert_close(stats["r1"], (2 * D.w * seen).flatten(1).pow(2).sum(1).mean().detach())
    assert stats["d_real_sign"].item() == 1.0  # D(x) >= 0 everywhere here


def _ada_tech(**more):
    # p starts at 0.5 and moves 0.25 every 2 steps of 16 images (batch x interval / speed = 32 / 128)
    return {"ada_target": 0.6, "ada_p": 0.5, "ada_interval": 2, "ada_speed_images": 128, **more}


def _follows_the_controller(rows, target=0.6, step=0.25):
    """Each logged p is the previous one, moved by `step` towards r_t's side of the target (clamped to [0, 1))
    after every second step (tech.ada_interval=2): the controller's law, read back from log.jsonl."""
    moves = 0
    for prev, row in zip(rows, rows[1:]):
        want = prev["ada_p"]
        if prev["step"] % 2 == 0:  # an adjustment at the end of prev's step, from the r_t it logged
            want = min(max(want + (step if prev["ada_rt"] > target else -step), 0.0), 1 - 1e-6)
        moves += want != prev["ada_p"]
        assert row["ada_p"] == pytest.approx(want, abs=1e-6), (prev, row)
    assert moves > 0


def test_p_survives_resume_exactly_and_follows_the_controller(tmp_path, idx_dir_with_test):
    tech = _ada_tech(diffaugment="color", r1_gamma=1.0)
    straight = gankit.train(tiny_config("dcgan", tmp_path / "a", data_dir=idx_dir_with_test, steps=8, tech=tech), quiet=True)
    gankit.train(tiny_config("dcgan", tmp_path / "b", data_dir=idx_dir_with_test, steps=5, tech=tech,
                             train={"checkpoint_every": 5}), quiet=True)
    resumed = gankit.resume(tmp_path / "b", {"max_steps": 8}, quiet=True)  # from step 5: mid-interval
    a, b = newest_checkpoint(straight["run"]), newest_checkpoint(resumed["run"])
    assert_same_weights(a, b)
    assert a["extra"]["tech"]["ada"]["p"] == b["extra"]["tech"]["ada"]["p"]
    rows_a, rows_b = read_log(straight["run"]), read_log(resumed["run"])
    assert [r["ada_p"] for r in rows_a] == [r["ada_p"] for r in rows_b]
    assert [r.get("ada_rt") for r in rows_a] == [r.get("ada_rt") for r in rows_b]
    _follows_the_controller(rows_a)


@pytest.mark.parametrize("preset", ["cgan", "acgan"])
def test_a_labelled_run_trains_with_ada(tmp_path, idx_dir_with_test, preset):
    run = gankit.train(tiny_config(preset, tmp_path / preset, data_dir=idx_dir_with_test, steps=6, tech=_ada_tech()),
                       quiet=True)["run"]
    rows = read_log(run)
    assert all(r.get("ada_p") is not None for r in rows) and rows[-1].get("ada_rt") is not None
    _follows_the_controller(rows)


def test_pix2pix_and_cyclegan_train_with_ada(tmp_path, paired, unpaired):
    ada = ["--set", "tech.ada_target=0.6", "--set", "tech.ada_p=0.5", "--set", "tech.ada_interval=2", "--set",
           "tech.ada_speed_images=32"]
    for preset, data in (("pix2pix", paired), ("cyclegan", unpaired)):
        assert main(["train", "--preset", preset, "--dataset", str(data), *TINY_I2I, "--max-steps", "6", *ada,
                     "--out", str(tmp_path / preset)]) == 0
        rows = [json.loads(r) for r in (tmp_path / preset / "log.jsonl").read_text().splitlines()]
        assert all(r.get("ada_p") is not None for r in rows) and rows[-1].get("ada_rt") is not None, preset
        _follows_the_controller(rows, step=4 * 2 / 32)


@pytest.mark.parametrize("over, message", [
    ({"tech": {"ada_p": 0.2, "ada_ops": "xflip,blur"}}, "unknown op 'blur' in tech.ada_ops"),
    ({"tech": {"ada_target": 0.6}, "loss": {"name": "wgan-gp"}}, "use a fixed tech.ada_p instead"),
    ({"tech": {"ada_interval": 8}}, "tech.ada_interval would do nothing without tech.ada_target"),
    ({"tech": {"ada_p": 0.2, "ada_speed_images": 5000}}, "tech.ada_speed_images would do nothing"),
    ({"tech": {"ada_p": 1.0}}, "it must be >= 0 and < 1"),
    ({"tech": {"ada_target": 0.6}, "data": {"dataset": "ring"}}, "this run has none"),
])
def test_nonsense_ada_settings_are_refused(over, message):
    with pytest.raises(GankitError, match=message):
        build_config("dcgan", overrides=[over])


def test_rotations_need_square_images():
    with pytest.raises(GankitError, match="rotate90 needs square images"):
        AdaptiveAugment(TechConfig(ada_p=0.2), (3, 16, 24), 16, torch.device("cpu"), 0.0)


def test_a_scheduled_fixed_p_follows_its_schedule_and_a_controlled_p_refuses_one(tmp_path, idx_dir_with_test):
    """tech.ada_p may be a schedule when no target moves p: each logged step's p is the schedule's value then."""
    sched = {"linear": [0.0, 0.8], "over": 4}
    run = gankit.train(tiny_config("dcgan", tmp_path / "s", data_dir=idx_dir_with_test, steps=6,
                                   tech={"ada_p": sched}), quiet=True)["run"]
    assert [round(r["ada_p"], 6) for r in read_log(run)] == [0.0, 0.2, 0.4, 0.6, 0.8, 0.8]
    with pytest.raises(GankitError, match="tech.ada_p is a schedule, but tech.ada_target moves p"):
        build_config("dcgan", overrides=[{"tech": {"ada_target": 0.6, "ada_p": sched}}])


def test_an_op_named_twice_is_refused():
    """tech.ada_ops=xflip,xflip would not flip twice as often: refused with one line."""
    with pytest.raises(GankitError, match="tech.ada_ops names xflip twice"):
        build_config("dcgan", overrides=[{"tech": {"ada_p": 0.5, "ada_ops": "xflip,translate,xflip"}}])
