"""Refinement of trained runs: `gankit sample|eval RUN --refine METHOD`, the Python API, the run's default in
its config, repeatability, the EMA generator and D of one checkpoint, classes kept, and the runs refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.refine import load_pair, refine_samples, refiner_for

from ..conftest import TINY_I2I, train_tiny
from ..faults.helpers import one_error_line

FAST = {"drs": {"drs_burn_in": 500}, "mh": {"mh_chain": 5, "mh_calibration": 300}, "latent": {"latent_steps": 3}}
FLAGS = {"drs": ["--refine-burn-in", "500"], "mh": ["--refine-chain", "5", "--refine-calibration", "300"],
         "latent": ["--refine-steps", "3"]}


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    return train_tiny("toy", tmp_path_factory.mktemp("refine") / "ring", dataset="ring", steps=6)


def test_cli_sample_refine_drs_writes_refined_samples_and_reports_their_cost(ring_run, tmp_path, capsys):
    out = tmp_path / "drs.npz"
    assert main(["sample", str(ring_run), "--num", "700", "--out", str(out), "--refine", "drs", *FLAGS["drs"]]) == 0
    printed = capsys.readouterr().out
    assert "wrote 700 samples" in printed and "refined by drs: acceptance" in printed and "D passes" in printed
    samples = np.load(out)["samples"]
    assert samples.shape == (700, 2) and np.isfinite(samples).all()
    plain = np.load(gankit.sample(ring_run, 700, tmp_path / "plain.npz", refine="none"))["samples"]
    assert not np.array_equal(samples, plain)  # drs kept a subset of G's proposals, not the plain draws


@pytest.mark.parametrize("method", ["drs", "mh", "latent"])
def test_each_method_repeats_with_its_seed_and_reports_acceptance_or_steps(ring_run, method):
    a, report = refine_samples(ring_run, 600, method, seed=3, settings=FAST[method])
    b, _ = refine_samples(ring_run, 600, method, seed=3, settings=FAST[method])
    c, _ = refine_samples(ring_run, 600, method, seed=4, settings=FAST[method])
    assert a.shape == (600, 2) and torch.equal(a, b) and not torch.equal(a, c)
    assert report["method"] == method and report["kept"] == 600
    assert report["g_forward_per_kept"] >= 1 and report["d_forward_per_kept"] >= 1 and report["ms_per_kept"] > 0
    if method == "latent":
        assert report["steps"] == 3 and report["backward_per_kept"] == 3
    else:
        assert 0 < report["acceptance"] <= 1
    if method == "drs":  # every kept sample cost 1/acceptance proposals, plus the burn-in
        assert report["g_forward_per_kept"] == pytest.approx((report["proposals"] + 500) / 600)


def test_a_higher_percentile_keeps_fewer_proposals(ring_run):
    rates = [refine_samples(ring_run, 500, "drs", settings={"drs_burn_in": 500, "drs_percentile": p})[1]["acceptance"]
             for p in (20, 95)]
    assert rates[1] < rates[0]


def test_drs_acceptance_does_not_depend_on_how_many_samples_are_asked_for(ring_run):
    """The reported acceptance is the rule's rate: a handful of samples, drawn from one round of proposals of
    which most are accepted and left over, reports about what thousands do (not kept / proposals)."""
    few, many = (refine_samples(ring_run, n, "drs", seed=1, settings=FAST["drs"])[1] for n in (5, 3000))
    assert many["acceptance"] > 0.05  # a rate that 5 kept of a round of 500 proposals (1%) cannot reach
    assert many["acceptance"] / 2 < few["acceptance"] < 2 * many["acceptance"]  # M rises as more are drawn


def test_refined_samples_stream_in_bounded_chunks(ring_run):
    refiner = refiner_for(ring_run, "drs", FAST["drs"])
    assert [len(x) for x in refiner.chunks(1203)] == [500, 500, 203]


def test_the_runs_config_sets_the_default_and_stays_loadable(ring_run, tmp_path, capsys):
    run = tmp_path / "copy"
    import shutil

    shutil.copytree(ring_run, run)
    cfg_file = run / "config.yaml"
    cfg_file.write_text(cfg_file.read_text() + "\nsample: {refine: drs, drs_burn_in: 500}\n")
    assert main(["sample", str(run), "--num", "100", "--out", str(tmp_path / "d.npz"), "--seed", "2"]) == 0
    assert "refined by drs" in capsys.readouterr().out  # the checkpoint still belongs to the edited run
    assert main(["sample", str(run), "--num", "100", "--out", str(tmp_path / "n.npz"), "--seed", "2",
                 "--refine", "none"]) == 0
    assert "refined" not in capsys.readouterr().out
    plain = gankit.generate(*gankit.load_generator(run)[:2], 100, seed=2).numpy()
    assert np.array_equal(np.load(tmp_path / "n.npz")["samples"], plain)


def test_eval_scores_refined_samples_and_records_the_report(ring_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(ring_run, run)
    assert main(["eval", str(run), "--refine", "mh", *FLAGS["mh"], "--num", "300"]) == 0
    printed = capsys.readouterr().out
    assert "high_quality" in printed and "# refined by mh: chains of 5" in printed
    recorded = [r for r in gankit.metrics.history.read_history(run / "metrics.json") if "refine" in r]
    assert recorded and recorded[-1]["refine"]["method"] == "mh" and recorded[-1]["fake"]["n"] == 300
    result = gankit.evaluate(run, refine="latent", refine_settings=FAST["latent"], num=200, record=False)
    assert result["refine"]["steps"] == 3
    with pytest.raises(GankitError, match="give RUN_DIR, not --fake"):
        gankit.evaluate(real="ring", fake=str(tmp_path / "x.npz"), refine="drs")


def test_settings_of_another_method_and_ensembles_are_refused(ring_run, tmp_path, capsys):
    assert main(["sample", str(ring_run), "--out", str(tmp_path / "x.npz"), "--refine", "drs",
                 "--refine-chain", "5"]) == 2
    assert "--refine-chain (sample.mh_chain) is a setting of --refine mh, not of drs" in one_error_line(capsys)
    assert main(["sample", str(ring_run), "--out", str(tmp_path / "x.npz"), "--refine-steps", "5"]) == 2
    assert "not of plain sampling" in one_error_line(capsys)
    assert main(["sample", str(ring_run), str(ring_run), "--out", str(tmp_path / "x.npz"), "--refine", "mh"]) == 2
    assert "one run folder" in one_error_line(capsys)
    assert main(["sample", str(ring_run), "--out", str(tmp_path / "x.npz"), "--refine", "drs",
                 "--refine-percentile", "101"]) == 2
    assert "sample.drs_percentile" in one_error_line(capsys)
    assert not (tmp_path / "x.npz").exists()


def test_a_wgan_critic_is_refused_by_drs_and_mh_but_refined_in_latent_space(tmp_path, capsys):
    run = train_tiny("toy", tmp_path / "wgan", dataset="ring", steps=2, loss={"name": "wgan-gp"})
    for method in ("drs", "mh"):
        assert main(["sample", str(run), "--out", str(tmp_path / "x.npz"), "--refine", method]) == 2
        line = one_error_line(capsys)
        assert "'wgan-gp' loss" in line and "--refine latent" in line
    x, report = refine_samples(run, 50, "latent", settings=FAST["latent"])
    assert x.shape == (50, 2) and report["steps"] == 3


def test_image_to_image_runs_are_refused(tmp_path, paired, capsys):
    out = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY_I2I, "--max-steps", "1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    for cmd in (["sample", str(out), "--out", str(tmp_path / "x.png")], ["eval", str(out)]):
        assert main([*cmd, "--refine", "drs"]) == 2
        assert "image-to-image run" in one_error_line(capsys)


def test_packed_discriminators_are_refused(tmp_path):
    run = train_tiny("toy", tmp_path / "pac", dataset="ring", steps=2, tech={"pack": 2})
    with pytest.raises(GankitError, match="judges packs of 2"):
        refine_samples(run, 10, "latent")


def test_the_ema_generator_and_the_d_of_the_same_checkpoint_are_used(tmp_path):
    from ..conftest import newest_checkpoint

    run = train_tiny("toy", tmp_path / "ema", dataset="ring", steps=4, train={"ema_decay": 0.9})
    ckpt = newest_checkpoint(run)
    pair = load_pair(run)
    for name, net, key in (("G", pair.G, "G_ema"), ("D", pair.D, "D")):
        state = net.state_dict()
        assert all(torch.equal(state[k], v) for k, v in ckpt[key].items()), name
    assert any(not torch.equal(ckpt["G"][k], ckpt["G_ema"][k]) for k in ckpt["G"])  # the two differ


@pytest.mark.parametrize("method", ["drs", "mh", "latent"])
def test_a_class_conditional_run_is_refined_within_the_requested_class(tmp_path_factory, method):
    run = _cgan_run(tmp_path_factory)
    refiner = refiner_for(run, method, FAST[method], klass="3")
    seen = {"G": [], "D": []}
    for name, net in (("G", refiner.nets.pair.G), ("D", refiner.nets.pair.D)):
        forward = net.forward

        def spy(x, y=None, *rest, _f=forward, _name=name, **kw):
            seen[_name].append(y)
            return _f(x, y, *rest, **kw)

        net.forward = spy
    x = torch.cat(list(refiner.chunks(40)))
    assert len(x) == 40
    fakes = [y for y in seen["G"]]
    assert fakes and all(y is not None and (y == 3).all() for y in fakes)
    # D scores the fakes with the class they were drawn within (mh: its held-out real starts are of class 3 too)
    assert seen["D"] and all(y is not None and (y == 3).all() for y in seen["D"])


_CGAN = {}


def _cgan_run(factory) -> Path:
    if "run" not in _CGAN:
        _CGAN["run"] = train_tiny("toy", factory.mktemp("cgan") / "cgan", dataset="ring", steps=2,
                                  cond={"mode": "cgan"})
    return _CGAN["run"]


def test_image_runs_are_refined_and_mh_says_what_it_calibrated_on(tmp_path, idx_dir, ring_run, capsys):
    run = train_tiny("dcgan", tmp_path / "img", data_dir=idx_dir)
    x, report = refine_samples(run, 20, "mh", settings=FAST["mh"])
    assert x.shape == (20, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert "training examples" in report["calibration"]["on"]  # no test split in idx_dir: said, not hidden
    assert "held-out" in refine_samples(ring_run, 20, "mh", settings=FAST["mh"])[1]["calibration"]["on"]
    assert main(["sample", str(run), "--num", "16", "--out", str(tmp_path / "g.png"), "--refine", "drs",
                 *FLAGS["drs"]]) == 0
    assert (tmp_path / "g.png").stat().st_size > 0 and "refined by drs" in capsys.readouterr().out


def test_a_ring_run_of_the_default_preset_samples_through_mh_unless_told_otherwise(tmp_path, capsys):
    """`gankit train --dataset ring` (the toy preset) then `gankit sample`: the samples are refined by MH, the
    default measured to find every mode; --refine none draws plain samples."""
    run = tmp_path / "ring"
    assert main(["train", "--dataset", "ring", "--max-steps", "5", "--batch-size", "32", "--quiet", "--out", str(run),
                 "--set", "data.toy_size=512", "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--num", "40", "--out", str(tmp_path / "s.npz"), "--refine-chain", "5",
                 "--refine-calibration", "100"]) == 0
    assert "refined by mh" in capsys.readouterr().out
    assert main(["sample", str(run), "--num", "40", "--out", str(tmp_path / "p.npz"), "--refine", "none"]) == 0
    assert "refined" not in capsys.readouterr().out
