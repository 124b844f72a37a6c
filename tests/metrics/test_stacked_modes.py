"""`modes` on a stacked dataset: each channel classified by the source's judge, the class triples counted."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics import evaluate, stacked_modes
from gankit.metrics.catalog import METRICS, Inputs, default_num
from gankit.metrics.judge import train_judge

from ..conftest import tiny_config

ALL_TRIPLES = torch.tensor(list(itertools.product(range(10), repeat=3)))  # [1000,3]


def images_of(triples: torch.Tensor) -> torch.Tensor:
    """uint8 [N,3,8,8] whose channel c is filled with 20 * its class: what the stub below reads back."""
    return (20 * triples).to(torch.uint8).view(-1, 3, 1, 1).expand(-1, 3, 8, 8).contiguous()


@pytest.fixture
def stub_judge(monkeypatch) -> list:
    """The judge replaced by a classifier returning the class written in each channel; records its calls."""
    calls = []

    def judge_classifier(source, data_dir, device):
        calls.append(source)
        return (lambda x: x[:, 0, 0, 0].long() // 20), 10

    monkeypatch.setattr(stacked_modes, "judge_classifier", judge_classifier)
    return calls


def test_perfect_and_collapsed_triples():
    perfect = stacked_modes.stacked_modes(ALL_TRIPLES.repeat(26, 1))  # 26,000 samples, 26 of each mode
    assert perfect == {"modes": 1000, "total_modes": 1000, "reverse_kl": pytest.approx(0, abs=1e-12)}
    collapsed = stacked_modes.stacked_modes(torch.tensor([[3, 1, 4]]).repeat(26_000, 1))
    assert collapsed["modes"] == 1 and collapsed["reverse_kl"] == pytest.approx(math.log(1000))  # KL(one || uniform)
    half = stacked_modes.stacked_modes(ALL_TRIPLES[:500].repeat(2, 1))
    assert half["modes"] == 500 and half["reverse_kl"] == pytest.approx(math.log(2))


def test_the_modes_entry_classifies_each_channel_with_the_sources_judge(stub_judge):
    modes = METRICS.get("modes")
    perfect = modes.compute(Inputs("stacked-fashion-mnist", images=images_of(ALL_TRIPLES.repeat(26, 1))))
    assert perfect["modes"] == 1000 and perfect["reverse_kl"] == pytest.approx(0, abs=1e-12)
    collapsed = modes.compute(Inputs("stacked-mnist", images=images_of(torch.tensor([[9, 0, 2]]).repeat(50, 1))))
    assert collapsed["modes"] == 1 and collapsed["reverse_kl"] == pytest.approx(math.log(1000))
    assert stub_judge == ["fashion-mnist", "mnist"]
    assert modes.score(perfect) > modes.score(collapsed)


def test_channels_are_classified_in_place():
    """Channel c of image i is the (3i + c)-th image the classifier sees, however the batches split."""
    triples = torch.randint(0, 10, (70, 3), generator=torch.Generator().manual_seed(0))
    got = stacked_modes.channel_classes(images_of(triples), lambda x: x[:, 0, 0, 0].long() // 20, batch=16)
    assert torch.equal(got, triples)


def test_modes_apply_to_stacked_images_only(stub_judge):
    fake = images_of(ALL_TRIPLES[:10])
    values, _ = evaluate.score(fake, fake, ["modes"], "stacked-fashion-mnist", lambda: None)
    assert values["modes"] == 10 and values["total_modes"] == 1000
    with pytest.raises(GankitError, match="is for ring and grid samples; for images use fid.*stacked-fashion-mnist"):
        evaluate.score(fake, fake, ["modes"], "fashion-mnist", lambda: None)


def test_26000_samples_by_default_where_stacked_modes_are_counted():
    assert default_num(["modes"], False, "stacked-fashion-mnist") == 26_000
    assert default_num(["fid", "modes"], False, "stacked-mnist") == 26_000
    assert default_num(["fid"], False, "stacked-fashion-mnist") == 10_000
    assert default_num(["modes"], True, "ring") == 2500


def test_gankit_eval_counts_the_modes_of_a_stacked_run_with_a_trained_judge(idx_dir_with_test, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config("dcgan", tmp_path / "run", dataset="stacked-fashion-mnist", data_dir=idx_dir_with_test)
    run = gankit.train(cfg, quiet=True)["run"]
    with pytest.raises(GankitError, match="no judge trained for 'fashion-mnist'"):
        evaluate.evaluate_run(run, ["modes"], num=8, record=False)
    train_judge("fashion-mnist", str(idx_dir_with_test), epochs=1, log=lambda m: None)
    assert main(["eval", run, "--metrics", "modes", "--num", "40"]) == 0
    out = capsys.readouterr().out
    assert "# features: the judge's classes per channel;" in out and "2-D points" not in out  # says what scored them
    lines = dict(line.split()[:2] for line in out.splitlines() if not line.startswith("#"))
    assert 1 <= int(lines["modes"]) <= 40 and lines["total_modes"] == "1000"
    assert 0 <= float(lines["reverse_kl"]) <= math.log(1000) + 1e-4
