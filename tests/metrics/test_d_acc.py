"""`gankit eval RUN --metrics d_acc`: the run's discriminator on held-out, training and fake images."""
import json

import numpy as np
import pytest

import gankit
from gankit.cli import main
from gankit.metrics import evaluate
from gankit.metrics.features import Extractor

from ..conftest import train_tiny, write_idx


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dacc")
    rng = np.random.default_rng(0)
    d = tmp / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", (rng.random((96, 28, 28)) * 255).astype(np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(96) % 10)
    return train_tiny("dcgan", tmp / "run", data_dir=d, steps=6, data={"holdout": 0.25})


def test_eval_d_acc_scores_the_runs_discriminator_and_records_it(run, capsys):
    assert main(["eval", str(run), "--metrics", "d_acc", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    v = result["metrics"]
    assert {"d_acc_heldout", "d_acc_train", "d_acc_fake", "d_out_heldout", "d_out_train", "d_out_fake", "d_gap",
            "r_t"} <= set(v)
    assert all(0.0 <= v[k] <= 1.0 for k in ("d_acc_heldout", "d_acc_train", "d_acc_fake"))
    assert v["d_gap"] == pytest.approx(v["d_acc_train"] - v["d_acc_heldout"])
    assert v["r_t"] == pytest.approx(2 * v["d_acc_train"] - 1)
    assert result["real"]["split"] == "held-out" and result["real"]["n"] == 16  # 25% of --limit 64
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history[-1]["metrics"]["d_acc_heldout"] == v["d_acc_heldout"]
    # the same checkpoint, the same numbers
    again = gankit.evaluate(run, metrics="d_acc", record=False)["metrics"]
    assert again == v


def test_d_acc_beside_other_metrics(run, monkeypatch, tmp_path):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    fake = Extractor("test", lambda x: (rng.normal(size=(len(x), 4)), np.full((len(x), 2), 0.5)), {})
    monkeypatch.setattr(evaluate, "choose_extractor", lambda *a, **k: fake)
    result = gankit.evaluate(run, metrics="kid,d_acc", num=32, record=False)
    assert "kid" in result["metrics"] and "d_acc_heldout" in result["metrics"]


def test_refine_beside_d_acc_refines_the_other_metrics_and_alone_is_refused(run, monkeypatch, tmp_path, capsys):
    """--refine with --metrics d_acc,kid scores kid on refined samples (it was dropped); with d_acc alone,
    which reads D on plain samples, --refine is refused rather than ignored."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    first4 = lambda x: np.asarray(x, dtype=np.float64).reshape(len(x), -1)[:, :4]  # noqa: E731
    fake = Extractor("test", lambda x: (first4(x), np.full((len(x), 2), 0.5)), {})
    monkeypatch.setattr(evaluate, "choose_extractor", lambda *a, **k: fake)
    result = gankit.evaluate(run, metrics="kid,d_acc", num=32, record=False, refine="drs",
                             refine_settings={"drs_burn_in": 64})
    assert result["refine"]["method"] == "drs" and result["refine"]["kept"] == 32 and "d_acc_heldout" in result["metrics"]
    assert main(["eval", str(run), "--metrics", "d_acc", "--refine", "drs"]) == 2
    err = capsys.readouterr().err
    assert "--refine applies to the other metrics" in err and "Traceback" not in err


def test_d_acc_refusals_are_one_line(run, tmp_path, idx_dir, capsys):
    bare = train_tiny("dcgan", tmp_path / "bare", data_dir=idx_dir, steps=2)  # no t10k beside the files, no holdout
    assert main(["eval", str(bare), "--metrics", "d_acc"]) == 2
    err = capsys.readouterr().err
    assert "no held-out images" in err and "data.holdout=0.1" in err and "Traceback" not in err
    assert main(["eval", "--real", "fashion-mnist", "--fake", "x.npz", "--metrics", "d_acc"]) == 2
    assert "give RUN_DIR" in capsys.readouterr().err


def test_a_critic_without_a_fixed_boundary_gets_no_r_t(tmp_path):
    """WGAN's critic has no 'real' side of zero: d_acc splits at the midpoint of its outputs, and r_t, ADA's
    sign heuristic around a fixed boundary, is left out rather than reported from a moving midpoint."""
    rng = np.random.default_rng(0)
    d = tmp_path / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", (rng.random((64, 28, 28)) * 255).astype(np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(64) % 10)
    run = train_tiny("wgan-gp", tmp_path / "run", data_dir=d, steps=2, data={"holdout": 0.25})
    v = gankit.evaluate(run, metrics="d_acc", record=False)["metrics"]
    assert "d_acc_heldout" in v and "r_t" not in v
