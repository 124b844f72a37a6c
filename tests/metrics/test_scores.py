import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.errors import GankitError
from gankit.metrics import distances as dist


def scipy_fid(a, b):
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_a_direct_scipy_sqrtm_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 16))
    b = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    assert dist.fid_from_features(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
    a = np.random.default_rng(1).normal(size=(1000, 32))
    assert abs(dist.fid_from_features(a, a)) < 1e-6
    assert dist.fid_from_features(a, a + 1.0) == pytest.approx(32.0, rel=1e-6)  # ||mu shift||^2 = 32


def test_kid_unbiased_estimator_equals_brute_force():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(10, 5)) + 0.2
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(12), 2)) / (12 * 11)
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(10), 2)) / (10 * 9)
    xy = sum(k(a, b) for a in x for b in y) / (12 * 10)
    mean, std = dist.kid(x, y, subsets=1, subset_size=100)  # one subset holding all of both sets (10 each)
    mean10, _ = dist.kid(x[:10], y, subsets=1, subset_size=10)
    xx10 = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(10), 2)) / 90
    xy10 = sum(k(a, b) for a in x[:10] for b in y) / 100
    assert mean10 == pytest.approx(xx10 + yy - 2 * xy10, rel=1e-9)
    assert std == 0.0 and np.isfinite(xx + xy)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(1500, 8)), rng.normal(size=(1500, 8))
    assert abs(dist.kid(a, b, subsets=20, subset_size=500)[0]) < 0.01
    assert dist.kid(a, b + 1, subsets=20, subset_size=500)[0] > 0.1


def test_inception_score_bounds():
    k = 10
    uniform = np.full((1000, k), 1 / k)
    assert dist.inception_score(uniform)[0] == pytest.approx(1.0)
    confident = np.eye(k)[np.arange(1000) % k] * (1 - 1e-9) + 1e-10
    assert dist.inception_score(confident)[0] == pytest.approx(k, rel=1e-4)


def test_precision_recall():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(500, 4))
    assert dist.precision_recall(a, a) == (1.0, 1.0)
    p, r = dist.precision_recall(a, a + 100)
    assert p == 0.0 and r == 0.0
    p, r = dist.precision_recall(a, a[:50] * 0.01)  # fakes collapsed to the centre: precise, no recall
    assert p == 1.0 and r < 0.2


def test_class_coverage():
    probs = np.eye(10)[[0] * 95 + [1] * 5]
    cov = dist.class_coverage(probs, np.ones(10))
    assert cov["classes_covered"] == 2
    assert cov["class_kl"] == pytest.approx(0.95 * np.log(0.95 * 10) + 0.05 * np.log(0.05 * 10))


# ---------------------------------------------------------------- Inception loading
def _random_inception_weights(path: Path, monkeypatch) -> Path:
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:  # build the network once without any weights to get its layout
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


def test_inception_features_with_weights_the_test_made(tmp_path, monkeypatch):
    from gankit.metrics.features import inception_extractor

    weights = _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    ex = inception_extractor(str(weights))
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)  # grayscale is expanded to RGB
    feats, probs = ex.features(images)
    assert feats.shape == (3, 2048) and probs.shape == (3, 1008)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert "TF1 bilinear" in ex.info["resize"] and ex.info["weights"] == str(weights)


def test_inception_weights_that_run_code_are_refused(tmp_path):
    import os

    from gankit.metrics.features import inception_extractor

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(GankitError, match="not a plain state dict"):
        inception_extractor(str(tmp_path / "evil.pth"))
    assert not (tmp_path / "pwned").exists()


def test_missing_inception_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    from gankit.metrics import features

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(GankitError, match="could not be downloaded .*--inception-weights PATH"):
        features.inception_extractor(None)


# ---------------------------------------------------------------- judge and gankit eval
def test_judge_train_and_eval_two_sets(tmp_path, idx_dir, monkeypatch, capsys):
    from gankit.cli import main

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    # the tiny fixture set has no t10k split: the message says what to add
    assert main(["judge", "train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--epochs", "1"]) == 2
    assert "t10k-images-idx3-ubyte" in capsys.readouterr().err
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx_dir / name).write_bytes((idx_dir / name.replace("t10k", "train")).read_bytes())
    assert main(["judge", "train", "--dataset", "fashion-mnist", "--data-dir", str(idx_dir), "--epochs", "1"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    noise = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    np.savez(tmp_path / "noise.npz", images=noise)
    assert main(["eval", "--real", "fashion-mnist", "--fake", str(tmp_path / "noise.npz"), "--data-dir",
                 str(idx_dir), "--features", "judge", "--num", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["metrics"]) >= {"fid", "kid", "is", "precision", "recall", "classes_covered"}
    assert result["real"]["n"] == 64 and result["fake"]["n"] == 64 and "judge" in result["features"]["extractor"]
    assert main(["eval", "--real", "fashion-mnist", "--fake", str(tmp_path / "noise.npz"), "--data-dir",
                 str(idx_dir), "--features", "judge", "--num", "64", "--metrics", "fid"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "fid" and float(out[0].split()[1]) == pytest.approx(result["metrics"]["fid"])
    stats = tmp_path / "ref.npz"
    for _ in range(2):  # the first call writes the reference statistics, the second reuses them
        assert main(["eval", "--real", "fashion-mnist", "--fake", str(tmp_path / "noise.npz"), "--data-dir",
                     str(idx_dir), "--features", "judge", "--num", "64", "--metrics", "fid", "--json",
                     "--real-stats", str(stats)]) == 0
        assert json.loads(capsys.readouterr().out)["metrics"]["fid"] == pytest.approx(result["metrics"]["fid"])
    assert stats.is_file() and set(np.load(stats).files) >= {"mu", "sigma", "features"}


def test_eval_a_toy_run_records_metrics_json(tmp_path, capsys):
    import gankit
    from gankit.cli import main
    from tests.conftest import tiny_config

    run = gankit.train(tiny_config("toy", tmp_path / "run", dataset="ring"), quiet=True)["run"]
    assert main(["eval", run, "--num", "500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("modes ") and lines[1].startswith("total_modes")
    assert main(["eval", run, "--num", "500", "--json"]) == 0
    data = json.loads((Path(run) / "metrics.json").read_text())
    assert len(data["history"]) == 2 and data["latest"]["step"] == 4 and data["latest"]["fake"]["n"] == 500


def test_eval_bad_requests(tmp_path, capsys):
    from gankit.cli import main

    assert main(["eval"]) == 2
    assert "nothing to score" in capsys.readouterr().err
    assert main(["eval", "--real", "ring", "--fake", str(tmp_path / "x.npz")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(GankitError, match="unknown metric 'fdi'"):
        from gankit.metrics.evaluate import parse_metrics
        parse_metrics("fid,fdi")


REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (REAL_FMNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)")
def test_judge_fid_on_real_fashion_mnist(tmp_path, monkeypatch):
    """With the judge, train vs test FID is near 0 and noise is far from both."""
    from gankit.metrics.evaluate import evaluate_sets
    from gankit.metrics.judge import train_judge

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    meta = train_judge("fashion-mnist", str(REAL_FMNIST), epochs=1, log=lambda m: None)
    assert meta["test_accuracy"] > 0.85
    from gankit.data.idx import read_idx
    test = read_idx(REAL_FMNIST / "t10k-images-idx3-ubyte.gz")[:2000].unsqueeze(-1).numpy()
    np.savez(tmp_path / "test.npz", images=test)
    noise = np.random.default_rng(0).integers(0, 256, test.shape, dtype=np.uint8)
    np.savez(tmp_path / "noise.npz", images=noise)
    near = evaluate_sets("fashion-mnist", str(tmp_path / "test.npz"), ["fid"], "judge", 2000, str(REAL_FMNIST))
    far = evaluate_sets("fashion-mnist", str(tmp_path / "noise.npz"), ["fid"], "judge", 2000, str(REAL_FMNIST))
    assert near["metrics"]["fid"] < 0.05 * far["metrics"]["fid"]
    assert near["metrics"]["classes_covered"] == 10
