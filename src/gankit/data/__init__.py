"""Datasets as tensors held in memory. Images are stored as uint8 and scaled to [-1, 1] per batch."""
from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import TOY_DATASETS, DataConfig
from ..devices import is_gpu
from ..errors import GankitError
from ..run import cache_root as run_cache_root
from .folders import load_folder_splits
from .idx import find_idx_pair, read_idx
from .stacked import STACKED_SOURCES, stack
from .toy2d import sample_toy, toy_centers, toy_std

__all__ = ["Data", "holdout_split", "load_dataset", "load_splits", "sample_toy", "to_float", "to_uint8", "toy_centers", "toy_std"]

SYSTEM_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "cifar-10-batches-py"}
INSTALL_HINT = {"fashion-mnist": " or `apt-get install dataset-fashion-mnist`", "mnist": "", "cifar10": ""}


@dataclass
class Data:
    """A whole dataset in memory. x: [N,C,H,W] uint8 (images) or [N,2] float32 (points)."""
    name: str
    x: Tensor
    labels: Tensor | None = None
    device: torch.device | None = None  # where batches are delivered (None: where x is)

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) or (2,)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx: Tensor) -> Tensor:
        """Examples at idx as float32 in [-1, 1] (images) or raw coordinates (points), on the training device."""
        if self.device is not None and self.x.device != self.device:  # held on the host, in pinned memory
            idx = idx.to(self.x.device)
            buf = torch.empty((len(idx),) + tuple(self.x.shape[1:]), dtype=self.x.dtype,
                              pin_memory=self.x.is_pinned())
            x = torch.index_select(self.x, 0, idx, out=buf).to(self.device, non_blocking=True)
        else:
            x = self.x[idx]
        return to_float(x) if self.is_image else x

    def to(self, device: torch.device, max_share: float = 0.25) -> Data:
        """Small datasets move to the device as uint8 (no per-step host copies). One larger than
        `max_share` of the GPU's free memory stays on the host in pinned memory; each batch is then
        gathered there and copied asynchronously."""
        labels = None if self.labels is None else self.labels.to(device)
        if is_gpu(device) and self.x.nbytes > max_share * torch.cuda.mem_get_info(device)[0]:
            return Data(self.name, self.x.pin_memory(), labels, device=device)
        return Data(self.name, self.x.to(device), labels, device=device)


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] images -> float32 in [-1, 1] (what the networks see)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8 [0, 255]."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def search_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Where a named dataset's files are looked for, in order."""
    roots = [Path(p) for p in (data_dir, os.environ.get("GANKIT_DATA")) if p]
    dirs: list[Path] = []
    for r in roots:
        dirs += [r, r / name, r / TORCHVISION_NAMES[name] / "raw"]
    if name in SYSTEM_DIRS:
        dirs.append(Path(SYSTEM_DIRS[name]))
    cache = cache_root()
    dirs += [cache / TORCHVISION_NAMES[name] / "raw"]
    return dirs


def cache_root() -> Path:
    return run_cache_root() / "data"


def _offline() -> bool:
    return os.environ.get("GANKIT_OFFLINE", "") not in ("", "0")


def _not_found(name: str, dirs: list[Path], why: str) -> GankitError:
    where = ", ".join(str(d) for d in dirs[:4]) + (", ..." if len(dirs) > 4 else "")
    return GankitError(f"{name} not found (looked in {where}) and {why}; put its files in --data-dir "
                       f"or $GANKIT_DATA{INSTALL_HINT.get(name, '')}")


def _load_mnist_like(name: str, cfg: DataConfig) -> tuple[Tensor, Tensor]:
    dirs = search_dirs(name, cfg.data_dir)
    pair = find_idx_pair(dirs)
    if pair is None:
        if not cfg.download or _offline():
            raise _not_found(name, dirs, "downloading is off")
        _download(name, cfg, dirs)
        pair = find_idx_pair(dirs)
        if pair is None:
            raise _not_found(name, dirs, "the download left no IDX files")
    return _read_pair(name, pair)


def _read_pair(name: str, pair: tuple[Path, Path]) -> tuple[Tensor, Tensor]:
    try:
        x, y = read_idx(pair[0]), read_idx(pair[1])  # a malformed file: IdxError, naming it
    except OSError as e:
        raise GankitError(f"cannot read {name}: {e}; replace the file") from None
    return x.unsqueeze(1), y.long()  # [N,1,28,28]


def _download(name: str, cfg: DataConfig, dirs: list[Path]) -> None:
    """Fetch through torchvision into the cache (or --data-dir)."""
    import torchvision.datasets as tvd

    cls = {"fashion-mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[name]
    root = Path(cfg.data_dir) if cfg.data_dir else cache_root()
    try:
        return cls(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 -- network errors come in many types (URLError, HTTPError, RuntimeError)
        raise _not_found(name, dirs, f"the download failed ({type(e).__name__})") from None


def cifar10_roots(data_dir: str | None) -> list[Path]:
    """Folders that may hold torchvision's cifar-10-batches-py, in search order."""
    return [Path(p) for p in (data_dir, os.environ.get("GANKIT_DATA")) if p] + [cache_root()]


def _load_cifar10(cfg: DataConfig) -> tuple[Tensor, Tensor]:
    import torchvision.datasets as tvd

    roots = cifar10_roots(cfg.data_dir)
    for root in roots:
        if (root / "cifar-10-batches-py").is_dir():
            ds = tvd.CIFAR10(str(root), train=True, download=False)
            break
    else:
        if not cfg.download or _offline():
            raise _not_found("cifar10", roots, "downloading is off")
        ds = _download("cifar10", cfg, roots)
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N,32,32,3] -> [N,3,32,32]
    return x, torch.tensor(ds.targets)


def _fit(x: Tensor, size: int | None, channels: int | None) -> Tensor:
    """Resize [N,C,H,W] uint8 to size and convert channels (1 <-> 3) when asked."""
    if channels is not None and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:  # ITU-R 601 luma, as PIL's convert("L")
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if size is not None and size != x.shape[-1]:
        chunks = [F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True,
                                align_corners=False) for c in x.split(4096)]
        x = torch.cat(chunks).round().clamp(0, 255).to(torch.uint8)
    return x.contiguous()


def _load_toy(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    x = sample_toy(name, cfg.toy_size, generator=torch.Generator().manual_seed(seed))
    return x, torch.cdist(x, toy_centers(name)).argmin(1)  # the mode each point came from


def _load_idx(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    x, labels = _load_mnist_like(name, cfg)
    return _fit(x, cfg.image_size, cfg.channels), labels


def _load_cifar(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    x, labels = _load_cifar10(cfg)
    return _fit(x, cfg.image_size, cfg.channels), labels


def _load_stacked(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    """Three images of the source dataset as R, G, B; data.limit images (default 128,000), drawn by `seed`."""
    x, labels = _load_mnist_like(STACKED_SOURCES[name], cfg)
    x, labels = stack(_fit(x, cfg.image_size, None), labels, cfg.limit, seed)
    return _fit(x, None, cfg.channels), labels


# named dataset -> (its name, cfg, seed) -> (x, labels); any other name is an image folder
LOADERS = {**dict.fromkeys(TOY_DATASETS, _load_toy), "fashion-mnist": _load_idx, "mnist": _load_idx,
           "cifar10": _load_cifar, **dict.fromkeys(STACKED_SOURCES, _load_stacked)}


# ---------------------------------------------------------------- held-out real images (D's test accuracy)
HELDOUT_POINTS = 4096  # ring and grid: fresh points drawn for the held-out set
HELDOUT_STACKS = 10_000  # stacked datasets: images stacked from the source's test split


def _test_idx(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    """The t10k files of (fashion-)mnist beside its training files (never downloaded)."""
    train = find_idx_pair(search_dirs(name, cfg.data_dir))
    dirs = [train[0].parent] if train else search_dirs(name, cfg.data_dir)
    pair = find_idx_pair(dirs, split="t10k") if train else None
    if pair is None:
        raise _not_found(f"the {name} test split (t10k-*-ubyte files)", dirs, "it is never downloaded")
    x, labels = _read_pair(name, pair)
    return _fit(x, cfg.image_size, cfg.channels), labels


def _test_cifar(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    import torchvision.datasets as tvd

    roots = [r for r in cifar10_roots(cfg.data_dir) if (r / "cifar-10-batches-py" / "test_batch").is_file()]
    if not roots:
        raise _not_found("the cifar10 test batch", cifar10_roots(cfg.data_dir), "it is never downloaded")
    ds = tvd.CIFAR10(str(roots[0]), train=False, download=False)
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N,32,32,3] -> [N,3,32,32]
    return _fit(x, cfg.image_size, cfg.channels), torch.tensor(ds.targets)


def _test_toy(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    x = sample_toy(name, HELDOUT_POINTS, generator=torch.Generator().manual_seed(seed + 1))  # points never trained on
    return x, torch.cdist(x, toy_centers(name)).argmin(1)


def _test_stacked(name: str, cfg: DataConfig, seed: int) -> tuple[Tensor, Tensor]:
    x, labels = _test_idx(STACKED_SOURCES[name], dataclasses.replace(cfg, channels=None), seed)
    x, labels = stack(x, labels, HELDOUT_STACKS, seed + 1)
    return _fit(x, None, cfg.channels), labels


# named dataset -> its own held-out split (the same signature as LOADERS)
TEST_LOADERS = {**dict.fromkeys(TOY_DATASETS, _test_toy), "fashion-mnist": _test_idx, "mnist": _test_idx,
                "cifar10": _test_cifar, **dict.fromkeys(STACKED_SOURCES, _test_stacked)}


def holdout_split(n: int, share: float, seed: int) -> tuple[Tensor, Tensor]:
    """(training indices, held-out indices) of n examples: round(share * n) of them (at least 1) held out,
    drawn by the seed; both sorted, disjoint, and together all of range(n)."""
    k = min(n - 1, max(1, round(share * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + 101))
    return perm[k:].sort().values, perm[:k].sort().values


def _subset(name: str, x: Tensor, labels: Tensor | None, idx: Tensor) -> Data:
    return Data(name, x[idx], None if labels is None else labels[idx])


def load_splits(cfg: DataConfig, seed: int = 0, heldout: bool = True, strict: bool = False
                ) -> tuple[Data, Data | None]:
    """The training set and the real images held out from it, never trained on (None when there are none):
    data.holdout > 0 sets that share of the (limited) training images aside, drawn by the seed; otherwise
    the dataset's own test split (named datasets; an image folder's test/ subfolder). heldout=False reads
    no test split (the training set is the same); a test split missing from disk is a warning (strict: its
    error)."""
    name, held = cfg.dataset, None
    if name in LOADERS:
        x, labels = LOADERS[name](name, cfg, seed)
    else:
        (x, labels), held = load_folder_splits(name, cfg.image_size, cfg.channels, cfg.workers,
                                                   heldout and not cfg.holdout)
    if cfg.limit is not None:
        x = x[: cfg.limit]
        labels = None if labels is None else labels[: cfg.limit]
    if cfg.holdout:
        if len(x) < 2:
            raise GankitError(f"data.holdout needs 2 or more examples; the dataset has {len(x)}")
        train_idx, held_idx = holdout_split(len(x), cfg.holdout, seed)
        return _subset(name, x, labels, train_idx), _subset(name, x, labels, held_idx)
    if heldout and name in TEST_LOADERS:
        try:
            held = Data(name, *TEST_LOADERS[name](name, cfg, seed))
        except GankitError as e:  # train anyway; say why D's test accuracy is not measured
            if strict:
                raise
            warnings.warn(f"no held-out images to measure D's overfitting: {e}; or hold out part of the training "
                          "set with --set data.holdout=0.1", stacklevel=2)
    elif held is not None:
        held = Data(name, *held)
    return Data(name, x, labels), held


def load_dataset(cfg: DataConfig, seed: int = 0) -> Data:
    """The training set named or pointed at by cfg.dataset (without the held-out images of data.holdout or
    of an image folder's test/ subfolder)."""
    return load_splits(cfg, seed, heldout=False)[0]
