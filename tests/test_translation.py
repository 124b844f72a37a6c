"""Image-to-image translation: Pix2Pix and CycleGAN."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import build_config
from gankit.data.paired import jitter, load_paired, load_unpaired
from gankit.errors import GankitError
from gankit.metrics.translation import ssim
from gankit.models.translation import PatchDiscriminator, UNetGenerator, receptive_field
from gankit.training.translation import ImagePool

TINY = ["--image-size", "16", "--batch-size", "4", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "i2i.patch_layers=1", "--set", "i2i.res_blocks=1", "--checkpoint-every", "3", "--quiet"]


def _img(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


@pytest.fixture
def paired(tmp_path) -> Path:
    """Side-by-side A|B pairs (A: a square's outline, B: the filled square) in train/ and test/."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for split, n in (("train", 12), ("test", 4)):
        for i in range(n):
            a, b = np.zeros((20, 20)), np.zeros((20, 20))
            y, x = rng.integers(2, 10, 2)
            b[y:y + 8, x:x + 8] = 255
            a[y, x:x + 8] = a[y + 7, x:x + 8] = a[y:y + 8, x] = a[y:y + 8, x + 7] = 255
            _img(root / split / f"{i:03d}.png", np.concatenate([a, b], axis=1))
    return root


@pytest.fixture
def unpaired(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    root = tmp_path / "unpaired"
    for split in ("train", "test"):
        for i in range(8):
            _img(root / f"{split}A" / f"{i}.png", rng.integers(0, 128, (16, 16)))
            _img(root / f"{split}B" / f"{i}.png", rng.integers(128, 256, (16, 16)))
    return root


def test_unet_skips_and_test_time_dropout():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 32, ngf=8).eval()
    x = torch.randn(2, 1, 32, 32)
    y1, y2 = G(x), G(x)
    assert y1.shape == (2, 1, 32, 32) and y1.abs().max() <= 1
    assert not torch.equal(y1, y2)  # dropout stays on at test time: Pix2Pix's noise
    with pytest.raises(GankitError, match="power-of-two"):
        UNetGenerator(1, 1, 28)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field(layers):
    """One output logit depends on exactly a receptive_field(layers)-pixel window of the input."""
    assert receptive_field(3) == 70  # the paper's 70x70 PatchGAN
    torch.manual_seed(0)
    D = PatchDiscriminator(1, ndf=4, layers=layers, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    out = D(x)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    (g,) = torch.autograd.grad(out[0, 0, i, j], x)
    rows = g[0, 0].abs().sum(1).nonzero()
    assert rows.max() - rows.min() + 1 == receptive_field(layers)


def test_paired_layouts_and_their_errors(tmp_path, paired):
    A, B = load_paired(paired, 16)
    assert A.shape == B.shape == (12, 1, 16, 16)
    # the A/ and B/ layout with the same names gives the same pairs
    for i, (a, b) in enumerate(zip(A, B)):
        _img(tmp_path / "ab" / "A" / f"{i:02d}.png", a[0].numpy())
        _img(tmp_path / "ab" / "B" / f"{i:02d}.png", b[0].numpy())
    A2, B2 = load_paired(tmp_path / "ab", 16)
    assert torch.equal(A2, A) and torch.equal(B2, B)
    (tmp_path / "ab" / "B" / "03.png").rename(tmp_path / "ab" / "B" / "x.png")
    with pytest.raises(GankitError, match="mismatched pair: '03' has no image in"):
        load_paired(tmp_path / "ab", 16)
    _img(tmp_path / "bad" / "0.png", np.zeros((20, 20)))
    with pytest.raises(GankitError, match="not a side-by-side A|B pair"):
        load_paired(tmp_path / "bad", 16)
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    _img(tmp_path / "empty" / "trainB" / "0.png", np.zeros((8, 8)))
    with pytest.raises(GankitError, match="domain A is empty"):
        load_unpaired(tmp_path / "empty", 16)


def test_jitter_moves_both_halves_of_a_pair_together():
    x = torch.rand(3, 1, 16, 16)
    out = jitter(torch.cat([x, x], 1), torch.Generator().manual_seed(0))
    assert out.shape == (3, 2, 16, 16)
    assert torch.equal(out[:, :1], out[:, 1:])
    assert not torch.allclose(out[:, :1], x)


def test_image_pool_keeps_a_history():
    pool, g = ImagePool(4), torch.Generator().manual_seed(0)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first, g), first)  # filling up: the new images pass through
    out = pool.query(torch.full((200, 1), 9.0), g)
    old = (out < 9).sum().item()
    assert 0 < old <= 4 and len(pool.images) == 4  # about half would be swapped; only 4 old ones exist


def test_ssim_by_hand():
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    a, b = (torch.full((1, 1, 16, 16), v, dtype=torch.float64) for v in (0.2, 0.6))
    c1 = 0.01 ** 2  # constant images: only the luminance term is left
    torch.testing.assert_close(ssim(a, b), torch.tensor([(2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)], dtype=torch.float64))
    assert ssim(x, x + 0.3 * torch.randn_like(x)).mean() < 0.9


def test_pix2pix_trains_resumes_exactly_translates_and_scores(tmp_path, paired, capsys):
    from gankit.run import list_step_checkpoints, load_file

    base = ["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY]
    assert main(base + ["--max-steps", "6", "--out", str(tmp_path / "straight")]) == 0
    assert main(base + ["--max-steps", "3", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--max-steps", "6", "--quiet"]) == 0
    a = load_file(list_step_checkpoints(tmp_path / "straight")[0])
    b = load_file(list_step_checkpoints(tmp_path / "resumed")[0])
    assert a["step"] == b["step"] == 6
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    strip = Image.open(tmp_path / "straight" / "samples" / "final.png")
    assert strip.width == 3 * (16 + 2) + 2  # input | output | target
    capsys.readouterr()
    assert main(["translate", str(tmp_path / "straight"), str(paired / "test"), "--out", str(tmp_path / "out")]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 4 and Image.open(outs[0]).size == (16, 16)
    assert main(["eval", str(tmp_path / "straight"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out.splitlines()[-1])["metrics"]
    assert 0 <= m["l1"] <= 1 and -1 <= m["ssim"] <= 1
    # the L1-only baseline trains the U-Net without D
    assert main(base + ["--max-steps", "2", "--set", "i2i.adversarial=false", "--out", str(tmp_path / "l1")]) == 0
    rows = [json.loads(r) for r in (tmp_path / "l1" / "log.jsonl").read_text().splitlines()]
    assert "loss_d" not in rows[-1] and rows[-1]["loss_g"] == pytest.approx(100 * rows[-1]["l1"])


def test_cyclegan_trains_translates_both_ways_and_scores(tmp_path, unpaired, capsys):
    assert main(["train", "--preset", "cyclegan", "--dataset", str(unpaired), *TINY, "--epochs", "2",
                 "--out", str(tmp_path / "cg")]) == 0
    rows = [json.loads(r) for r in (tmp_path / "cg" / "log.jsonl").read_text().splitlines()]
    assert {"cycle", "identity", "loss_adv"} <= set(rows[-1])
    assert rows[0]["lr_scale"] == 1.0 and rows[-1]["lr_scale"] < 1.0  # linear decay in the second half
    for d in ("AtoB", "BtoA"):
        assert main(["translate", str(tmp_path / "cg"), str(unpaired / f"test{d[0]}"), "--out",
                     str(tmp_path / d), "--direction", d]) == 0
        assert len(list((tmp_path / d).glob("*.png"))) == 8
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "cg"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out.splitlines()[-1])["metrics"]
    assert 0 <= m["cycle_l1_a"] <= 1 and 0 <= m["cycle_l1_b"] <= 1


def test_translation_errors(tmp_path, capsys):
    with pytest.raises(GankitError, match="give --dataset PATH to paired A|B images"):
        build_config("pix2pix")
    assert main(["train", "--preset", "cyclegan", "--dataset", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "trainA" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_demo_datasets_from_fashion_mnist_layout(tmp_path, idx_dir):
    from gankit.translate import make_demo

    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    e2f = make_demo("edges2fashion", tmp_path / "e2f", str(idx_dir), num=5, num_test=3)
    A, B = load_paired(e2f, 32)
    assert A.shape == (5, 1, 32, 32) and len(list((e2f / "test").glob("*.png"))) == 3
    t2t = make_demo("tops2trousers", tmp_path / "t2t", str(idx_dir), num=4, num_test=2)
    A, B = load_unpaired(t2t, 32)
    assert len(A) == len(B) == 4
    assert json.loads((t2t / "gankit-demo.json").read_text())["B_classes"] == [1]
    with pytest.raises(GankitError, match="not empty"):
        make_demo("tops2trousers", t2t, str(idx_dir))


def test_pix2pix_evaluates_during_training_and_samples_with_an_ema(tmp_path, paired):
    """The one loop gives image-to-image runs what every run has: --eval-every with the family's metric, and an
    EMA of G kept, checkpointed and used for the strips and translations (issue 12)."""
    from gankit.metrics.translation import load_translation_run
    from gankit.run import list_step_checkpoints, load_file

    run = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY, "--epochs", "2", "--eval-every", "1",
                 "--set", "train.ema_decay=0.9", "--out", str(run)]) == 0
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(0 <= h["metrics"]["l1"] <= 1 for h in history)
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "metrics.png").is_file()
    ckpt = load_file(list_step_checkpoints(run)[0])
    assert any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"])  # an average, not a copy
    nets, _, _ = load_translation_run(run)
    assert all(torch.equal(v, ckpt["G_ema"][k]) for k, v in nets["G"].state_dict().items())  # translates with it


def test_translation_refuses_what_it_cannot_do_instead_of_ignoring_it(tmp_path, paired, capsys):
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY, "--max-steps", "1", "--compile",
                 "--out", str(tmp_path / "c")]) == 2
    assert "train.compile is not offered for Pix2Pix runs" in capsys.readouterr().err
