"""Pictures of a run: sample grids (or scatter plots for 2-D data) and the textbook training curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def save_samples(x: torch.Tensor, path: Path, centers: Optional[torch.Tensor] = None, title: str = "",
                 nrow: Optional[int] = None, labels: Optional[torch.Tensor] = None) -> None:
    """Images [N,C,H,W] in [-1,1] -> a PNG grid (square, or `nrow` images per row: one class per row);
    points [N,2] -> a scatter plot PNG (coloured by requested class when `labels` are given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = x.detach().float().cpu()
    if x.dim() == 4:
        from torchvision.utils import save_image

        save_image(x, path, nrow=nrow or max(1, math.ceil(math.sqrt(x.shape[0]))), normalize=True,
                   value_range=(-1, 1), padding=2)
        return
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if labels is not None:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.6, c=labels.cpu().numpy(), cmap="tab10", label="generated")
    else:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.5, color="tab:blue", label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=25, marker="x", color="tab:red", label="mode centres")
        lim = float(centers.abs().max()) * 1.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def _curves(rows: Sequence[dict], keys: dict[str, str], steps_per_epoch: int, path: Path,
            title: str, ylabel: str) -> None:
    """One line per key against steps, a moving average over raw values, and an epoch axis on top."""
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for key, label in keys.items():
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if not pts:
            continue
        s, y = map(np.asarray, zip(*pts))
        window = max(1, len(y) // 100)
        line, = ax.plot(s, y, alpha=0.25, linewidth=0.6)
        ax.plot(s[window - 1:], _smooth(y, window), color=line.get_color(), label=label, linewidth=1.4)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:  # e.g. the semi-supervised baseline has no D(x), D(G(z))
        ax.text(0.5, 0.5, "nothing logged for this plot", ha="center", va="center", transform=ax.transAxes)
    spe = max(steps_per_epoch, 1)
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_losses(rows: Sequence[dict], steps_per_epoch: int, path: Path) -> None:
    _curves(rows, {"loss_g": "G loss", "loss_d": "D loss"}, steps_per_epoch, path,
            "Generator and discriminator losses", "loss")


def plot_d_outputs(rows: Sequence[dict], steps_per_epoch: int, path: Path, probabilities: bool) -> None:
    ylabel = "mean D output (probability)" if probabilities else "mean critic value"
    _curves(rows, {"d_real": "D(x)", "d_fake": "D(G(z))"}, steps_per_epoch, path,
            "Discriminator on real and generated data", ylabel)


def plot_grad_norms(rows: Sequence[dict], steps_per_epoch: int, path: Path) -> None:
    _curves(rows, {"grad_g": "||grad G||", "grad_d": "||grad D||"}, steps_per_epoch, path,
            "Gradient norms", "L2 norm")


OVERFIT_PANELS = ({"d_acc_train": "training images called real", "d_acc_heldout": "held-out images called real",
                   "d_acc_fake": "fakes called fake"},
                  {"r_t": "r_t = E[sign D(x_train)]", "ada_p": "augmentation p (ADA)"})


def plot_overfitting(rows: Sequence[dict], steps_per_epoch: int, path: Path) -> bool:
    """D's accuracy on training, held-out and fake images (as measured), and ADA's r_t (with p when adaptive
    augmentation is on). False (nothing written) when nothing of it was logged."""
    panels = [{k: v for k, v in keys.items() if any(r.get(k) is not None for r in rows)} for keys in OVERFIT_PANELS]
    panels = [keys for keys in panels if keys]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.6), dpi=100, squeeze=False)
    for ax, keys in zip(axes[0], panels):
        for key, label in keys.items():
            s, y = map(np.asarray, zip(*[(r["step"], r[key]) for r in rows if r.get(key) is not None]))
            window = max(1, len(y) // 100)
            ax.plot(s[window - 1:], _smooth(y, window), label=label, linewidth=1.4, marker="." if len(y) < 50 else None)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        spe = max(steps_per_epoch, 1)
        ax.secondary_xaxis("top", functions=(lambda x, spe=spe: x / spe, lambda e, spe=spe: e * spe)).set_xlabel("epoch")
    axes[0][0].set_title("Is D memorising its training images?")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_progression(sample_paths: Sequence[Path], path: Path, max_panels: int = 6) -> None:
    """The fixed-z samples of up to `max_panels` evenly spaced epochs, side by side."""
    paths = list(sample_paths)
    if not paths:
        return
    if len(paths) > max_panels:
        idx = np.linspace(0, len(paths) - 1, max_panels).round().astype(int)
        paths = [paths[i] for i in idx]
    fig, axes = plt.subplots(1, len(paths), figsize=(3 * len(paths), 3.3), dpi=100, squeeze=False)
    for ax, p in zip(axes[0], paths):
        ax.imshow(plt.imread(p), cmap="gray")
        name, _, num = p.stem.partition("-")
        ax.set_title(f"{name} {int(num)}" if num.isdigit() else name, fontsize=10)
        ax.axis("off")
    fig.suptitle("Fixed-z samples across training")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_metric(history: Sequence[dict], steps_per_epoch: int, path: Path) -> None:
    """The evaluation metric(s) of a run (during training and by `gankit eval`) against iterations, best
    points marked; at most the first four metrics."""
    history = [h for h in history if isinstance(h, dict) and isinstance(h.get("metrics"), dict) and "step" in h]
    keys = list(dict.fromkeys(k for h in history for k, v in h["metrics"].items() if isinstance(v, (int, float))))[:4]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 3.5), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = [h for h in history if key in h["metrics"]]
        steps = [h["step"] for h in rows]
        vals = [h["metrics"][key] for h in rows]
        ax.plot(steps, vals, marker="o", label=key)
        best = [(h["step"], h["metrics"][key]) for h in rows if h.get("best")]
        if best:
            ax.scatter(*zip(*best), color="tab:red", zorder=3, label="new best")
        ax.set_xlabel("iteration")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
        spe = max(steps_per_epoch, 1)
        ax.secondary_xaxis("top", functions=(lambda s, spe=spe: s / spe, lambda e, spe=spe: e * spe)).set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


SCHEDULED = ("lr_g", "lr_d", "beta2", "r1_gamma", "r2_gamma", "ema_half_life")  # keys logged when scheduled


def plot_schedules(rows: Sequence[dict], path: Path) -> bool:
    """One panel per hyper-parameter that followed a schedule (as logged). False when none did."""
    keys = [k for k in SCHEDULED if any(r.get(k) is not None for r in rows)]
    if not keys:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(*zip(*[(r["step"], r[key]) for r in rows if r.get(key) is not None]))
        ax.set_title(key)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_run_plots(run: Path, steps_per_epoch: int, probabilities: bool, device: str, final: bool = False) -> None:
    """Every picture of a run folder from its files (log.jsonl, the grids, metrics.json), then report.html:
    the same after training, during it, and after `gankit eval` added a result."""
    from ..metrics.history import read_history
    from ..run import read_log
    from .artifacts import run_grids
    from .report import write_report

    rows = read_log(run / "log.jsonl")
    if rows:
        plot_losses(rows, steps_per_epoch, run / "losses.png")
        plot_d_outputs(rows, steps_per_epoch, run / "d_outputs.png", probabilities)
        plot_grad_norms(rows, steps_per_epoch, run / "grad_norms.png")
        plot_schedules(rows, run / "schedules.png")
        plot_overfitting(rows, steps_per_epoch, run / "overfitting.png")
    grids = run_grids(run)
    if final and (run / "samples" / "final.png").is_file():
        grids.append(run / "samples" / "final.png")
    plot_progression(grids, run / "progression.png")
    history = read_history(run / "metrics.json")
    if history:
        plot_metric(history, steps_per_epoch, run / "metrics.png")
    write_report(run, device)
