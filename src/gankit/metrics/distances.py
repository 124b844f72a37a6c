"""The field's sample-quality statistics, computed from features (and class probabilities).

FID   Heusel et al. 2017: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.
KID   Binkowski et al. 2018: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over random subsets
      (100 subsets of 1000, as torch-fidelity's defaults).
IS    Salimans et al. 2016: exp E_x KL(p(y|x) || p(y)), mean and std over 10 splits.
P/R   Kynkaanniemi et al. 2019: k-NN (k=3) balls around real (fake) features; precision is the share of
      fakes inside some real ball, recall the share of reals inside some fake ball.
"""
from __future__ import annotations

import numpy as np
import torch


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of [N, D] features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """FID between two Gaussians. tr((S1 S2)^(1/2)) is the sum of square roots of the eigenvalues of
    S1^(1/2) S2 S1^(1/2), a symmetric PSD matrix: eigvalsh is exact and stable where sqrtm may turn complex."""
    diff = mu1 - mu2
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S1^(1/2)
    eig = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID mean and std over random subsets (the subset size shrinks to the smaller set if needed)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    vals = [_poly_mmd2_unbiased(real[rng.choice(len(real), size, replace=False)],
                                fake[rng.choice(len(fake), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(vals)), float(np.std(vals))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """IS mean and std over splits. probs: [N, K] class probabilities p(y|x)."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _rows_per_chunk(n: int, budget: int = 1 << 24) -> int:
    """Rows of an [rows, n] distance matrix that fit in `budget` entries (128 MiB of float64)."""
    return max(1, min(2048, budget // max(n, 1)))


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour, a chunk of rows at a time (memory O(N))."""
    radii = [torch.cdist(part, x).kthvalue(k + 1, dim=1).values  # +1: each point is its own nearest neighbour
             for part in x.split(_rows_per_chunk(len(x)))]
    return torch.cat(radii)


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    out = []
    for part in points.split(_rows_per_chunk(len(centres))):
        out.append((torch.cdist(part, centres) <= radii[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    r, f = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(fake, dtype=torch.float64)
    precision = _covered(f, r, _knn_radii(r, k)).double().mean().item()
    recall = _covered(r, f, _knn_radii(f, k)).double().mean().item()
    return precision, recall


def class_coverage(probs: np.ndarray, real_hist: np.ndarray, min_share: float = 0.01) -> dict[str, float]:
    """From a judge's predictions on fakes: classes holding >= min_share of the samples, and
    KL(predicted class histogram of fakes || class histogram of the real data)."""
    pred = np.asarray(probs).argmax(axis=1)
    k = len(real_hist)
    hist = np.bincount(pred, minlength=k) / len(pred)
    covered = int((hist >= min_share).sum())
    real = np.asarray(real_hist, np.float64) / np.sum(real_hist)
    nz = hist > 0
    kl = float((hist[nz] * np.log(hist[nz] / np.maximum(real[nz], 1e-12))).sum())
    return {"classes_covered": covered, "num_classes": k, "class_kl": kl}
