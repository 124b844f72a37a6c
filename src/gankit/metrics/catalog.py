"""The metrics, each listed once: what it is computed from, how, which way is better and whether it is
computed by default. `gankit eval --metrics`, the defaults of `gankit eval`, `gankit list` and the metric
followed during training (train.eval_metric, --eval-every) all read METRICS.

    metric = METRICS.get("kid"); values = metric.compute(Inputs(...))
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from torch import Tensor

from ..config import STACKED_DATASETS
from ..errors import GankitError
from ..registry import Registry
from . import d_acc
from . import distances as dist
from .stacked_modes import STACKED_NUM, image_modes
from .toy import toy_modes


class Needs(enum.Flag):
    """What a metric is computed from."""
    REAL_FEATURES = enum.auto()  # features of the reference set
    FAKE_FEATURES = enum.auto()  # features of the samples
    FAKE_PROBS = enum.auto()  # the extractor's class probabilities of the samples
    POINTS = enum.auto()  # the 2-D samples themselves (ring, grid)
    STACKS = enum.auto()  # the sample images of a stacked dataset (each channel classified by its source's judge)
    DISCRIMINATOR = enum.auto()  # the run's own D, on held-out, training and fake images (a run only: d_acc.py)


EXTRACTED = Needs.REAL_FEATURES | Needs.FAKE_FEATURES | Needs.FAKE_PROBS  # what a feature extractor gives


@dataclass
class Inputs:
    """What the chosen metrics are computed from (None where none of them needs it)."""
    dataset: str  # the reference set's name (ring and grid know their modes)
    real_features: Optional[np.ndarray] = None
    fake_features: Optional[np.ndarray] = None
    fake_probs: Optional[np.ndarray] = None
    points: Optional[Tensor] = None
    images: Optional[Tensor] = None  # the samples as uint8 images (stacked datasets: their channels are classified)
    data_dir: Optional[str] = None  # where the reference set's files are (the judge of a stacked set's source)
    device: str = "cpu"
    quick: bool = False  # during training: a cheaper estimate (fewer KID subsets)
    discriminator: Optional[dict] = None  # d_acc's values, measured on the run beforehand


@dataclass(frozen=True)
class Metric:
    name: str
    needs: Needs
    compute: Callable[[Inputs], dict]  # -> {value name: number}
    higher_is_better: bool
    default: bool  # computed when no --metrics are given (on the kind of data it applies to)
    follows: tuple[str, ...] = ()  # the values --eval-every records; the first is the score (empty: not offered)
    rank: Optional[Callable[[dict], float]] = None  # the number "best" compares (default: values[follows[0]])
    biased_when_small: bool = False  # biased upwards on small sets: warn below 2048 samples

    @property
    def on_points(self) -> bool:
        """Scores 2-D points (ring, grid), not images."""
        return bool(self.needs & Needs.POINTS)

    def score(self, values: dict) -> float:
        return float(self.rank(values) if self.rank else values[self.follows[0]])

    def better(self, value: float, than: Optional[float]) -> bool:
        return than is None or (value > than if self.higher_is_better else value < than)


METRICS: Registry[Metric] = Registry("metric")
_ORDER: list[Metric] = []  # registration order: the order of the defaults and of the printed table


def register(metric: Metric) -> Metric:
    METRICS.register(metric.name)(metric)
    _ORDER.append(metric)
    return metric


def _kid(i: Inputs) -> dict:
    mean, std = dist.kid(i.real_features, i.fake_features, subsets=20 if i.quick else 100)
    return {"kid": mean, "kid_std": std}


def _is(i: Inputs) -> dict:
    mean, std = dist.inception_score(i.fake_probs)
    return {"is": mean, "is_std": std}


def _pr(i: Inputs) -> dict:
    precision, recall = dist.precision_recall(i.real_features, i.fake_features)
    return {"precision": precision, "recall": recall}


BOTH = Needs.REAL_FEATURES | Needs.FAKE_FEATURES
register(Metric("fid", BOTH, lambda i: {"fid": dist.fid_from_features(i.real_features, i.fake_features)},
                higher_is_better=False, default=True, follows=("fid",), biased_when_small=True))
register(Metric("kid", BOTH, _kid, higher_is_better=False, default=True, follows=("kid",)))
register(Metric("is", Needs.FAKE_PROBS, _is, higher_is_better=True, default=True, follows=("is",)))
register(Metric("pr", BOTH, _pr, higher_is_better=True, default=True))
def _modes(i: Inputs) -> dict:
    """Ring and grid: their centres; a stacked dataset: the class triples of its images' channels."""
    if i.points is not None:
        return toy_modes(i.points, i.dataset)
    return image_modes(i.images, i.dataset, i.data_dir, i.device)


register(Metric("modes", Needs.POINTS | Needs.STACKS, _modes, higher_is_better=True, default=True,
                follows=("modes", "reverse_kl", "high_quality"),
                rank=lambda v: v["modes"] - min(v["reverse_kl"], 10) / 100))  # more modes, then lower reverse KL


register(Metric(d_acc.NAME, Needs.DISCRIMINATOR, d_acc.compute, higher_is_better=False, default=False))


def all_metrics() -> list[Metric]:
    return list(_ORDER)


def names_for(points: bool, followed: bool = False) -> list[str]:
    """The metrics of images (or of 2-D points); followed: only those --eval-every can follow."""
    return [m.name for m in _ORDER if m.on_points == points and (m.follows or not followed)]


def default_metrics(points: bool) -> list[str]:
    return [m.name for m in _ORDER if m.on_points == points and m.default]


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """'fid,kid' (or ['fid', 'kid']) -> the metric names, checked; unknown ones list the known."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    if not names:
        raise GankitError(f"no metric named in '{text}'; available: {', '.join(m.name for m in _ORDER)}")
    for name in names:
        METRICS.get(name)
    return list(dict.fromkeys(names))


def applies(m: Metric, points: bool, dataset: str = "") -> bool:
    """m scores this data: 2-D points, images, or (Needs.STACKS) the images of a stacked dataset; a run's D
    (Needs.DISCRIMINATOR) scores either."""
    stacks = not points and bool(m.needs & Needs.STACKS) and dataset in STACKED_DATASETS
    return bool(m.needs & Needs.DISCRIMINATOR) or m.on_points == points or stacks


def check_kind(metrics: Sequence[str], points: bool, dataset: str = "") -> list[Metric]:
    """The chosen metrics, refused where they do not apply to the data (images, 2-D points or the images of
    the stacked dataset `dataset`)."""
    chosen = [METRICS.get(m) for m in metrics]
    for m in chosen:
        if not applies(m, points, dataset):
            if points:
                raise GankitError(f"metric '{m.name}' needs images; for ring and grid use --metrics "
                                  f"{','.join(default_metrics(True))}")
            also = f" (and {', '.join(STACKED_DATASETS)} images)" if m.needs & Needs.STACKS else ""
            raise GankitError(f"--metrics {m.name} is for ring and grid samples; for images use "
                              f"{','.join(default_metrics(False))}{also}")
    return chosen


def default_num(metrics: Sequence[str], points: bool, dataset: str = "") -> int:
    """Samples scored when --num is not given: 2,500 points, 10,000 images, 26,000 images of a stacked
    dataset when a metric counts their modes (the protocol of VEEGAN and PacGAN)."""
    stacks = not points and dataset in STACKED_DATASETS and any(METRICS.get(m).needs & Needs.STACKS for m in metrics)
    return STACKED_NUM if stacks else 2500 if points else 10000


def training_metric(cfg) -> Metric:
    """The metric --eval-every follows: train.eval_metric on images; the points metric on ring and grid."""
    if cfg.is_toy:
        return METRICS.get(names_for(points=True, followed=True)[0])
    m = METRICS.get(cfg.train.eval_metric)
    if m.on_points or not m.follows:
        raise GankitError(f"train.eval_metric '{m.name}' cannot be followed during training on images; use "
                          f"{', '.join(names_for(points=False, followed=True))}")
    return m
