"""The metrics registry: one entry per metric, read by parse_metrics, score, RunEvaluator and the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.data import sample_toy
from gankit.errors import GankitError
from gankit.metrics import catalog, evaluate
from gankit.metrics.catalog import METRICS, Inputs, Metric, Needs, default_metrics, parse_metrics
from gankit.metrics.features import Extractor

from ..conftest import tiny_config


def test_every_metric_computes_the_values_it_follows():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 4))
    probs = rng.dirichlet(np.ones(3), size=60)
    inputs = Inputs("ring", real_features=feats, fake_features=feats + 0.1, fake_probs=probs,
                    points=sample_toy("ring", 300, torch.Generator().manual_seed(0)), quick=True,
                    discriminator={"d_acc_heldout": 0.5})  # d_acc: measured on a run's D beforehand
    for m in catalog.all_metrics():
        values = m.compute(inputs)
        assert set(m.follows) <= set(values), m.name
        if m.follows:
            assert np.isfinite(m.score(values))


def test_parse_metrics_reads_the_registry_and_lists_it_in_errors():
    assert parse_metrics("fid, kid,fid") == ["fid", "kid"]
    assert parse_metrics(["modes"]) == ["modes"]
    with pytest.raises(GankitError) as e:
        parse_metrics("fid,fdi")
    assert "unknown metric 'fdi'" in str(e.value) and all(n in str(e.value) for n in METRICS.names())
    with pytest.raises(GankitError, match="no metric named"):
        parse_metrics(" , ")


def test_the_names_shown_to_users_are_the_registrys(capsys):
    assert set(evaluate.ALL_METRICS) == set(METRICS.names())  # what `gankit list` prints
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(m.name for m in catalog.all_metrics()) in help_text
    assert set(default_metrics(points=True)) | set(default_metrics(points=False)) <= set(METRICS.names())
    assert all(METRICS.get(m).on_points for m in default_metrics(points=True))
    assert not any(METRICS.get(m).on_points for m in default_metrics(points=False))


def test_which_way_is_better_comes_from_the_registry():
    followed = [m for m in catalog.all_metrics() if m.follows and not m.on_points]
    lower = next(m for m in followed if not m.higher_is_better)
    higher = next(m for m in followed if m.higher_is_better)
    assert lower.better(1.0, 2.0) and not lower.better(2.0, 1.0)
    assert higher.better(2.0, 1.0) and not higher.better(1.0, 2.0)
    assert lower.better(5.0, None) and higher.better(5.0, None)


def test_the_training_evaluator_follows_the_registered_metric(tmp_path):
    cfg = tiny_config("toy", tmp_path / "r", dataset="ring", train={"eval_num": 200})
    ev = evaluate.RunEvaluator(cfg, torch.zeros(10, 2), torch.device("cpu"))
    assert ev.metric is catalog.training_metric(cfg) and ev.metric.on_points
    # more modes wins; with as many modes, the lower reverse KL
    assert ev.is_best({"modes": 5, "reverse_kl": 0.5, "high_quality": 90.0})
    assert not ev.is_best({"modes": 4, "reverse_kl": 0.0, "high_quality": 99.0})
    assert ev.is_best({"modes": 5, "reverse_kl": 0.1, "high_quality": 90.0})
    image_cfg = tiny_config("dcgan", tmp_path / "i", train={"eval_metric": "modes"})
    with pytest.raises(GankitError, match="cannot be followed during training on images"):
        catalog.training_metric(image_cfg)


def test_a_metric_registered_once_is_offered_everywhere(tmp_path, monkeypatch):
    """Adding an entry to METRICS is all it takes for eval to compute it (no if-chain to extend)."""
    mean_norm = Metric("mean-norm", Needs.FAKE_FEATURES, lambda i: {"mean_norm": float(np.linalg.norm(
        i.fake_features, axis=1).mean())}, higher_is_better=False, default=False, follows=("mean_norm",))
    monkeypatch.setattr(METRICS, "_items", {**METRICS._items, mean_norm.name: mean_norm})
    monkeypatch.setattr(catalog, "_ORDER", [*catalog._ORDER, mean_norm])
    monkeypatch.setattr(evaluate, "choose_extractor", lambda *a, **k: Extractor(
        "test", lambda x: (x.flatten(1).double().numpy(), np.full((len(x), 2), 0.5)), {}))
    sets = []
    for k in range(2):
        np.savez(tmp_path / f"{k}.npz", images=np.full((8, 4, 4, 1), 3 * k, np.uint8))
        sets.append(str(tmp_path / f"{k}.npz"))
    result = evaluate.evaluate_sets(sets[0], sets[1], parse_metrics("mean-norm"), num=8)
    assert result["metrics"] == {"mean_norm": pytest.approx(3 * 4)}  # 16 pixels of 3: norm 12
    assert "mean-norm" not in default_metrics(points=False)  # default=False: computed only when asked for


def test_metrics_of_the_wrong_kind_name_those_that_apply(tmp_path):
    points = torch.randn(50, 2)
    with pytest.raises(GankitError, match=f"needs images; for ring and grid use --metrics {default_metrics(True)[0]}"):
        evaluate.score(points, points, ["fid"], "ring", lambda: None)
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(GankitError, match="is for ring and grid samples; for images use fid"):
        evaluate.score(images, images, ["modes"], "fashion-mnist", lambda: None)


def test_only_the_features_a_metric_needs_are_computed(tmp_path, monkeypatch):
    """IS reads the samples' class probabilities alone: the reference set's features are not extracted."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    seen = []

    def features(x):
        seen.append(len(x))
        return np.zeros((len(x), 3)), np.full((len(x), 4), 0.25)

    real, fake = torch.zeros(30, 1, 4, 4, dtype=torch.uint8), torch.ones(20, 1, 4, 4, dtype=torch.uint8)
    values, _ = evaluate.score(real, fake, ["is"], "fashion-mnist", lambda: Extractor("t", features, {}))
    assert seen == [20] and values["is"] == pytest.approx(1.0)
    evaluate.score(real, fake, ["fid"], "fashion-mnist", lambda: Extractor("t", features, {}))
    assert seen[1:] == [30, 20]
