"""The domain judge: a small classifier trained on the dataset itself.

For data where Inception is a poor fit (28 px grayscale clothes) and for offline use. Its penultimate
features serve FID/KID/precision/recall; its class predictions give class coverage, the KL of the
predicted class histogram to the real one, and a classifier score (the Inception Score formula).
Trained judges are cached by the content hash of their training data.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import TOY_DATASETS, DataConfig
from ..data import Data, load_dataset
from ..data.folders import load_folder_splits
from ..data.idx import find_idx_pair, read_idx
from ..errors import GankitError
from ..run import atomic_save, cache_root

JUDGE_VERSION = 1


class JudgeNet(nn.Module):
    """conv-BN-ReLU-pool x2, a 128-d feature layer, a linear classifier. Input in [-1, 1]."""

    def __init__(self, channels: int, num_classes: int, feat_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(64 * 7 * 7, feat_dim), nn.ReLU(True))
        self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(feat_dim, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)  # [N,128] features
        return f, self.classifier(f)  # features, logits [N,K]


def judge_dir() -> Path:
    return cache_root() / "judges"


def content_hash(x: torch.Tensor) -> str:
    return hashlib.sha1(x.contiguous().cpu().numpy().tobytes()).hexdigest()[:12]


def _splits(dataset: str, data_dir: Optional[str]) -> tuple[Data, Data]:
    """(train, test) with labels for a named dataset or a labelled image folder."""
    if dataset in TOY_DATASETS:
        raise GankitError("a judge needs labelled images; for ring and grid use --metrics modes")
    if dataset in TEST_SPLITS:
        train = load_dataset(DataConfig(dataset=dataset, data_dir=data_dir))  # downloads if it must
        return train, test_split(dataset, data_dir)
    return _folder_sets(dataset)


def _idx_test(dataset: str, data_dir: Optional[str]) -> Data:
    """The t10k files beside the training files of (fashion-)mnist."""
    from ..data import search_dirs

    train_pair = find_idx_pair(search_dirs(dataset, data_dir))
    if train_pair is None:  # not on disk yet: the loader finds or downloads it (or says why not)
        load_dataset(DataConfig(dataset=dataset, data_dir=data_dir))
        train_pair = find_idx_pair(search_dirs(dataset, data_dir))
    folder = train_pair[0].parent if train_pair else None  # the test split must sit beside the train split
    pair = find_idx_pair([folder], split="t10k") if folder else None
    if pair is None:
        raise GankitError(f"{dataset} test files (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) "
                          f"not found beside the training files in {folder}; add them there")
    return Data(dataset, read_idx(pair[0]).unsqueeze(1), read_idx(pair[1]).long())


def _cifar10_test(dataset: str, data_dir: Optional[str]) -> Data:
    import torchvision.datasets as tvd

    from ..data import cifar10_roots

    roots = [r for r in cifar10_roots(data_dir) if (r / "cifar-10-batches-py").is_dir()]
    if not roots:
        load_dataset(DataConfig(dataset=dataset, data_dir=data_dir))
        roots = [r for r in cifar10_roots(data_dir) if (r / "cifar-10-batches-py").is_dir()]
    ds = tvd.CIFAR10(str(roots[0]), train=False, download=False)
    return Data(dataset, torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets))


def _folder_test(dataset: str, data_dir: Optional[str]) -> Data:
    return _folder_sets(dataset)[1]


# the named datasets with labels -> their test split; any other name is a labelled image folder
TEST_SPLITS = {"fashion-mnist": _idx_test, "mnist": _idx_test, "cifar10": _cifar10_test}


def test_split(dataset: str, data_dir: Optional[str]) -> Data:
    """The labelled test split alone (without reading the training images) of a named dataset found
    on disk, or the held-out 10% of a labelled image folder."""
    if dataset in TOY_DATASETS:
        raise GankitError("a judge needs labelled images; for ring and grid use --metrics modes")
    return TEST_SPLITS.get(dataset, _folder_test)(dataset, data_dir)


def _folder_sets(dataset: str) -> tuple[Data, Data]:
    """(train, test) of a labelled image folder: the training images (ROOT/train/ or ROOT without test/, as
    training reads them) and ROOT/test/ when its classes are the training ones, else a fixed 10% held out."""
    (x, y), held = load_folder_splits(dataset, None, None)
    if y is None:
        raise GankitError(f"'{dataset}' has no class subfolders; a judge needs ROOT/CLASS/IMAGE files")
    if held is not None and held[1] is not None:
        return Data(dataset, x, y), Data(dataset, *held)
    perm, n_test = _folder_split(len(x))
    return Data(dataset, x[perm[n_test:]], y[perm[n_test:]]), Data(dataset, x[perm[:n_test]], y[perm[:n_test]])


def _folder_split(n: int) -> tuple[torch.Tensor, int]:
    """A fixed permutation of a labelled folder and how many of its first entries are held out (10%)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0)), max(1, n // 10)


@torch.no_grad()
def accuracy(net: JudgeNet, data: Data, device: torch.device, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(data), batch):
        idx = torch.arange(i, min(i + batch, len(data)))
        _, logits = net(data.batch(idx).to(device))
        correct += (logits.argmax(1).cpu() == data.labels[idx]).sum().item()
    return correct / len(data)


def train_judge(dataset: str, data_dir: Optional[str] = None, epochs: int = 3, seed: int = 0,
                device: str = "cpu", force: bool = False, log=print) -> dict:
    """Train (or reuse from the cache) the judge of a dataset. Returns its metadata incl. test accuracy."""
    from ..sampling import resolve_device

    dev = resolve_device(device)  # a missing GPU is said so before anything is read or trained
    train, test = _splits(dataset, data_dir)
    key = f"{Path(dataset).name}-{content_hash(train.x)}-v{JUDGE_VERSION}"
    path = judge_dir() / f"{key}.pt"
    if path.is_file() and not force:
        return load_judge_file(path)[1]
    torch.manual_seed(seed)
    k = int(train.labels.max()) + 1
    net = JudgeNet(train.shape[0], k).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * (len(train) // 128 + 1))
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(train)).split(128):
            x = train.batch(idx).to(dev)
            if x.dim() == 4:  # light augmentation: random shifts of up to 2 px
                x = torch.roll(x, shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            _, logits = net(x)
            loss = F.cross_entropy(logits, train.labels[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"judge epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, {time.time() - t0:.0f} s")
    acc = accuracy(net, test, dev)
    hist = torch.bincount(train.labels, minlength=k).tolist()
    meta = {"key": key, "dataset": dataset, "shape": list(train.shape), "num_classes": k,
            "test_accuracy": acc, "train_size": len(train), "test_size": len(test), "epochs": epochs,
            "class_histogram": hist, "seconds": round(time.time() - t0, 1), "path": str(path)}
    atomic_save({"state": {k_: v.cpu() for k_, v in net.state_dict().items()}, "meta": meta}, path)
    return meta


def load_judge_file(path: Path) -> tuple[JudgeNet, dict]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise GankitError(f"judge file '{path}' is damaged ({type(e).__name__}); retrain it with "
                          "`gankit judge train --force`") from None
    meta = obj["meta"]
    net = JudgeNet(meta["shape"][0], meta["num_classes"])
    net.load_state_dict(obj["state"])
    return net.eval(), meta


def find_judge(dataset: str, data_dir: Optional[str] = None) -> Path:
    """The cached judge of a dataset (by content hash), or a clear error saying how to train one."""
    if dataset in TOY_DATASETS:
        raise GankitError("a judge needs labelled images; for ring and grid use --metrics modes")
    if dataset in TEST_SPLITS:
        x = load_dataset(DataConfig(dataset=dataset, data_dir=data_dir)).x
    else:  # the images the judge was trained on, as train_judge hashed them
        x = _folder_sets(dataset)[0].x
    key = f"{Path(dataset).name}-{content_hash(x)}-v{JUDGE_VERSION}"
    path = judge_dir() / f"{key}.pt"
    if not path.is_file():
        raise GankitError(f"no judge trained for '{dataset}'; run `gankit judge train --dataset {dataset}` once "
                          f"(3 to 10 minutes on a 2-core CPU; cached in {judge_dir()} for every later run), or use "
                          "--features inception")
    return path


def judge_features(net: JudgeNet, images: torch.Tensor, shape: list[int], device: torch.device,
                   batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N,C,H,W] -> (features [N,128], class probabilities [N,K]); images are fitted to the judge."""
    from ..data import _fit, to_float

    net = net.to(device).eval()
    feats, probs = [], []
    with torch.no_grad():
        for part in images.split(batch):
            x = to_float(_fit(part.cpu(), shape[1], shape[0]).to(device))
            f, logits = net(x)
            feats.append(f.cpu())
            probs.append(logits.softmax(1).cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
