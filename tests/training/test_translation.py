"""Image-to-image runs: Pix2Pix and CycleGAN train, resume, translate and score."""
import json

import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.metrics.translation import ssim
from gankit.training.translation import ImagePool

from ..conftest import TINY_I2I as TINY
from ..conftest import assert_same_weights, newest_checkpoint, read_log


def test_image_pool_keeps_a_history():
    pool, g = ImagePool(4), torch.Generator().manual_seed(0)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first, g), first)  # filling up: the new images pass through
    out = pool.query(torch.full((200, 1), 9.0), g)
    old = (out < 9).sum().item()
    # each query swaps with probability 1/2 and each of the 4 old images leaves the pool once: over 200 queries
    # every slot is swapped (all but surely), so exactly the 4 old images come back
    assert old == 4 and len(pool.images) == 4


def test_ssim_by_hand():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    a, b = (torch.full((1, 1, 16, 16), v, dtype=torch.float64) for v in (0.2, 0.6))
    c1 = 0.01 ** 2  # constant images: only the luminance term is left
    torch.testing.assert_close(ssim(a, b), torch.tensor([(2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)], dtype=torch.float64))
    # noise of std 0.3 on U(0, 1) images (variance 1/12): the structure term 2 s2 / (2 s2 + 0.09) = 0.65 by hand,
    # 0.678 measured on the seeded 16 x 16 pair (local windows, luminance term ~1)
    assert ssim(x, x + 0.3 * torch.randn_like(x)).mean().item() == pytest.approx(0.67767, rel=1e-4)


def test_pix2pix_trains_resumes_exactly_translates_and_scores(tmp_path, paired, capsys):
    base = ["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY]
    assert main(base + ["--max-steps", "6", "--out", str(tmp_path / "straight")]) == 0
    assert main(base + ["--max-steps", "3", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--max-steps", "6", "--quiet"]) == 0
    a = newest_checkpoint(tmp_path / "straight")
    b = newest_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 6
    assert_same_weights(a, b)
    strip = Image.open(tmp_path / "straight" / "samples" / "final.png")
    assert strip.width == 3 * (16 + 2) + 2  # input | output | target
    capsys.readouterr()
    assert main(["translate", str(tmp_path / "straight"), str(paired / "test"), "--out", str(tmp_path / "out")]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 4 and Image.open(outs[0]).size == (16, 16)
    assert main(["eval", str(tmp_path / "straight"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out.splitlines()[-1])["metrics"]
    # the seeded 6-step run on the held-out pairs: far from the target yet (mean |error| 0.47 of the range 2),
    # structure barely started (SSIM ~0)
    assert m["l1"] == pytest.approx(0.47076, rel=1e-3) and m["ssim"] == pytest.approx(0.0058, abs=1e-3)
    # the L1-only baseline trains the U-Net without D
    assert main(base + ["--max-steps", "2", "--set", "i2i.adversarial=false", "--out", str(tmp_path / "l1")]) == 0
    rows = read_log(tmp_path / "l1")
    assert "loss_d" not in rows[-1] and rows[-1]["loss_g"] == pytest.approx(100 * rows[-1]["l1"])


def test_cyclegan_trains_translates_both_ways_and_scores(tmp_path, unpaired, capsys):
    assert main(["train", "--preset", "cyclegan", "--dataset", str(unpaired), *TINY, "--epochs", "2",
                 "--out", str(tmp_path / "cg")]) == 0
    rows = read_log(tmp_path / "cg")
    assert {"cycle", "identity", "loss_adv"} <= set(rows[-1])
    # 2 epochs x 8 images / batch 4 = 4 steps; linear decay over the second half: the step-4 update runs at
    # progress 3/4, lr x (1 - (3/4 - 1/2) / (1/2)) = 0.5
    assert [r["lr_scale"] for r in rows] == [1.0, 1.0, 1.0, 0.5]
    for d in ("AtoB", "BtoA"):
        assert main(["translate", str(tmp_path / "cg"), str(unpaired / f"test{d[0]}"), "--out",
                     str(tmp_path / d), "--direction", d]) == 0
        assert len(list((tmp_path / d).glob("*.png"))) == 8
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "cg"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out.splitlines()[-1])["metrics"]
    assert m["cycle_l1_a"] == pytest.approx(0.17857, rel=1e-3)  # the seeded run
    assert m["cycle_l1_b"] == pytest.approx(0.20340, rel=1e-3)


def test_translation_errors(tmp_path, capsys):
    with pytest.raises(GankitError, match="give --dataset PATH to paired A|B images"):
        build_config("pix2pix")
    assert main(["train", "--preset", "cyclegan", "--dataset", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "trainA" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_pix2pix_evaluates_during_training_and_samples_with_an_ema(tmp_path, paired):
    """The one loop gives image-to-image runs what every run has: --eval-every with the family's metric, and an
    EMA of G kept, checkpointed and used for the strips and translations (issue 12)."""
    from gankit.metrics.translation import load_translation_run

    run = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY, "--epochs", "2", "--eval-every", "1",
                 "--set", "train.ema_decay=0.9", "--out", str(run)]) == 0
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["metrics"]["l1"] for h in history] == pytest.approx([0.46247, 0.45962], rel=1e-3)  # the seeded run
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "metrics.png").is_file()
    ckpt = newest_checkpoint(run)
    assert any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"])  # an average, not a copy
    nets, _, _ = load_translation_run(run)
    assert all(torch.equal(v, ckpt["G_ema"][k]) for k, v in nets["G"].state_dict().items())  # translates with it


def test_translation_refuses_what_it_cannot_do_instead_of_ignoring_it(tmp_path, paired, capsys):
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY, "--max-steps", "1", "--compile",
                 "--out", str(tmp_path / "c")]) == 2
    assert "train.compile is not offered for Pix2Pix runs" in capsys.readouterr().err


def test_translation_runs_log_gradient_norms_like_every_run(tmp_path, paired, unpaired):
    """The one loop's gradient-norm plot and vanishing-gradient check read grad_g and grad_d (issue 12)."""
    for preset, data in (("pix2pix", paired), ("cyclegan", unpaired)):
        assert main(["train", "--preset", preset, "--dataset", str(data), *TINY, "--max-steps", "2",
                     "--out", str(tmp_path / preset)]) == 0
        rows = [json.loads(r) for r in (tmp_path / preset / "log.jsonl").read_text().splitlines()]
        assert all(r["grad_g"] > 0 and r["grad_d"] > 0 for r in rows), preset


def test_gan_only_settings_are_refused_for_image_to_image_not_ignored(tmp_path, paired, capsys):
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY, "--max-steps", "1", "--loss", "rpgan",
                 "--set", "tech.r1_gamma=1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "loss.name, tech.r1_gamma: for GANs from z only" in err and not (tmp_path / "r").exists()
