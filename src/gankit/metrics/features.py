"""Feature extractors behind FID, KID, IS and precision/recall.

inception: the standard FID Inception-V3 (TensorFlow weights ported to PyTorch) through torch-fidelity,
           fed uint8 images and resized to 299 with its TF1-compatible bilinear resize, as published FIDs
           are computed. Weights are read with torch.load(weights_only=True) before torch-fidelity sees them.
judge:     the dataset's own small classifier (see judge.py).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import GankitError
from ..registry import Registry
from ..run import cache_root

INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")


@dataclass
class Extractor:
    """features(uint8 [N,C,H,W]) -> (features [N,D], class probabilities [N,K])."""
    name: str
    features: Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]
    info: dict = field(default_factory=dict)  # recorded with every number: weights, resize, ...
    class_histogram: Optional[list] = None  # the real data's classes, for an extractor that knows them (judge)

    @property
    def cache_id(self) -> str:
        return f"{self.name}-{self.info.get('weights_id', '')}"

    def extras(self, probs: np.ndarray) -> dict:
        """What the extractor's own classes say of the samples: class coverage and KL (judge), else nothing."""
        if self.class_histogram is None:
            return {}
        from .distances import class_coverage

        return class_coverage(probs, np.asarray(self.class_histogram))


def weights_cache() -> Path:
    return cache_root() / "weights"


def _inception_weights(path: Optional[str]) -> Path:
    if path:
        p = Path(path)
        if not p.is_file():
            raise GankitError(f"Inception weights '{p}' not found; give the path of "
                              f"{INCEPTION_URL.rsplit('/', 1)[1]}")
        return p
    p = weights_cache() / INCEPTION_URL.rsplit("/", 1)[1]
    if not p.is_file():
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(INCEPTION_URL, str(p), progress=False)
        except Exception as e:  # offline: URLError, timeouts, HTTP errors
            raise GankitError(f"the FID Inception weights are not cached and could not be downloaded "
                              f"({type(e).__name__}); download {INCEPTION_URL} to {p} or pass "
                              "--inception-weights PATH (or use --features judge)") from None
    return p


def inception_extractor(weights: Optional[str] = None, device: str | torch.device = "cpu",
                        batch: int = 100) -> Extractor:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GankitError("Inception features need torch-fidelity; pip install torch-fidelity") from None
    path = _inception_weights(weights)
    raw = path.read_bytes()
    try:  # refuse anything but tensors before handing the bytes to torch-fidelity
        torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:
        raise GankitError(f"Inception weights '{path}' are not a plain state dict ({type(e).__name__}); "
                          "download them again") from None
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                          feature_extractor_weights_path=io.BytesIO(raw))
    except RuntimeError as e:
        raise GankitError(f"Inception weights '{path}' do not fit Inception-V3 ({str(e).splitlines()[0]})") from None
    net = net.to(device).eval()
    import hashlib

    def features(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = [], []
        with torch.no_grad():
            for part in images.split(batch):
                x = part.to(device)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)  # grayscale -> RGB, as the reference tools do
                f, logits = net(x)
                feats.append(f.cpu())
                probs.append(logits.softmax(1).cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    info = {"extractor": "inception-v3 (FID, TF weights via torch-fidelity)", "weights": str(path),
            "weights_id": hashlib.sha1(raw).hexdigest()[:12], "resize": "TF1 bilinear to 299x299 from uint8",
            "dims": 2048}
    return Extractor("inception", features, info)


def judge_extractor(dataset: str, data_dir: Optional[str] = None, device: str | torch.device = "cpu",
                    train_missing: bool = False) -> Extractor:
    """The dataset's judge; train_missing: train the judge of (fashion-)mnist first when none is cached."""
    from .judge import find_judge, judge_features, load_judge_file, train_judge

    if train_missing and dataset in JUDGE_DATASETS:
        train_judge(dataset, data_dir, log=lambda m: None)  # reused from the cache after the first time
    path = find_judge(dataset, data_dir)
    net, meta = load_judge_file(path)
    info = {"extractor": f"judge of {meta['dataset']} (test accuracy {meta['test_accuracy']:.4f})",
            "weights": str(path), "weights_id": meta["key"], "resize": f"bilinear to {meta['shape'][1]} px",
            "dims": 128}
    return Extractor("judge", lambda x: judge_features(net, x, meta["shape"], torch.device(device)), info,
                     class_histogram=list(meta["class_histogram"]))


# --features NAME -> (reference set, data_dir, inception weights, device, train_missing) -> Extractor
EXTRACTORS: Registry[Callable[..., Extractor]] = Registry("feature extractor")
JUDGE_DATASETS = ("fashion-mnist", "mnist")  # where `auto` picks the judge: Inception is a poor fit for them


@EXTRACTORS.register("inception")
def _inception(dataset: str, data_dir: Optional[str], weights: Optional[str], device: str,
               train_missing: bool = False) -> Extractor:
    return inception_extractor(weights, device)


@EXTRACTORS.register("judge")
def _judge(dataset: str, data_dir: Optional[str], weights: Optional[str], device: str,
           train_missing: bool = False) -> Extractor:
    return judge_extractor(dataset, data_dir, device, train_missing)


@EXTRACTORS.register("auto")
def _auto(dataset: str, data_dir: Optional[str], weights: Optional[str], device: str,
          train_missing: bool = False) -> Extractor:
    """The judge for (fashion-)mnist, else Inception."""
    pick = _judge if dataset in JUDGE_DATASETS else _inception
    return pick(dataset, data_dir, weights, device, train_missing)
