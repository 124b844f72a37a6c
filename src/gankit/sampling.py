"""Draw samples from a trained run: a PNG grid (or scatter plot) or an .npz array file."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from .conditioning import Unlabelled, mode_of
from .config import Config
from .data import to_uint8, toy_centers
from .errors import GankitError
from .observe.plots import save_samples
from .run import read_checkpoint
from .training.steps import sample_z


def load_generator(run_dir: str | Path, checkpoint: Optional[str] = None,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, Config, Path]:
    """Rebuild G from a run's checkpoint (newest if `checkpoint` is None), in eval mode."""
    G, cfg, path, _ = load_generator_checkpoint(run_dir, checkpoint, device)
    return G, cfg, path


def load_generator_checkpoint(run_dir: str | Path, checkpoint: Optional[str] = None,
                              device: str | torch.device = "cpu") -> tuple[nn.Module, Config, Path, dict]:
    """load_generator, plus the checkpoint dict it was read from (step, shape, ...)."""
    cfg, ckpt, path = read_checkpoint(run_dir, checkpoint, device)
    if cfg.is_translation:
        raise GankitError(f"'{run_dir}' is an image-to-image run; translate images with gankit translate")
    G, _ = mode_of(cfg.cond, ckpt.get("num_classes", 0)).build(cfg.model, tuple(ckpt["shape"]))
    G.load_state_dict(ckpt.get("G_ema") or ckpt["G"])  # the EMA weights when the run kept them
    return G.to(device).eval(), cfg, path, ckpt


def conditioning_of(G: nn.Module, cfg: Config) -> Unlabelled:
    return mode_of(cfg.cond, getattr(G, "num_classes", 0))


@torch.no_grad()
def generate(G: nn.Module, cfg: Config, num: int, seed: int = 0, batch_size: int = 500,
             device: str | torch.device = "cpu", classes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[num, ...] samples; images in [-1, 1]. Repeatable for a given seed; leaves the global RNG as it was.
    A class-conditional G draws `classes` [num] (default: uniform classes); InfoGAN's G random codes
    (`traversal` walks one code)."""
    cond = conditioning_of(G, cfg)
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout kept on at sampling draws from the global generator
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            z = sample_z(n, cfg.model.latent_dim, cfg.model.latent_dist, generator=gen).to(device)
            y = cond.sample(n, gen)  # drawn even when classes are given: z stays the same either way
            if classes is not None:
                y = classes[start:start + n]
            out.append(cond.generate(G, z, None if y is None else y.to(device)).cpu())
    return torch.cat(out)


def generate_mixture(runs: Sequence[str | Path], num: int, seed: int = 0, checkpoint: Optional[str] = None,
                     device: str = "cpu") -> tuple[torch.Tensor, Config, str]:
    """Samples of an ensemble of runs (e.g. the same GAN trained with different seeds) as an equal-weight
    mixture: each sample's component is drawn uniformly. Returns (samples, first config, description)."""
    loaded = [load_generator_checkpoint(r, checkpoint, device) for r in runs]
    gens = [g[:3] for g in loaded]
    shapes = {tuple(g[3]["shape"]) for g in loaded}
    if len(shapes) > 1:
        raise GankitError(f"the runs of an ensemble must make samples of one shape, got {sorted(shapes)}")
    if len(gens) == 1:
        G, cfg, path = gens[0]
        return generate(G, cfg, num, seed=seed, device=device), cfg, path.stem
    gen = torch.Generator().manual_seed(seed)
    component = torch.randint(len(gens), (num,), generator=gen)  # [num] which member draws each sample
    counts = torch.bincount(component, minlength=len(gens)).tolist()
    parts = [generate(G, cfg, n, seed=seed * 1000 + i, device=device)
             for i, ((G, cfg, _), n) in enumerate(zip(gens, counts)) if n > 0]
    x = torch.cat(parts)[torch.randperm(num, generator=gen)]  # interleave the members
    return x, gens[0][1], f"an ensemble of {len(gens)} runs"


def resolve_class(klass: str, G: nn.Module, cfg: Config) -> int:
    """A class given by index or name -> its index (clear error otherwise)."""
    from .metrics.classify import class_names

    K = getattr(G, "num_classes", 0)
    if not conditioning_of(G, cfg).takes_class:
        raise GankitError(f"--class needs a class-conditional run (cond.mode cgan or acgan); this run has "
                          f"cond.mode={cfg.cond.mode}")
    names = class_names(cfg, K)
    if str(klass).lstrip("-").isdigit() and 0 <= int(klass) < K:
        return int(klass)
    lowered = [n.lower() for n in names]
    if str(klass).lower() in lowered:
        return lowered.index(str(klass).lower())
    raise GankitError(f"unknown class '{klass}'; this run has classes 0..{K - 1}: {', '.join(names)}")


@torch.no_grad()
def traversal(G: nn.Module, cfg: Config, code: str, rows: int, seed: int = 0,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, int]:
    """InfoGAN latent traversal: `rows` latent vectors, each varied along `code`. Returns (images, columns)."""
    cond = conditioning_of(G, cfg)
    gen = torch.Generator().manual_seed(seed)
    z_rows = sample_z(rows, cfg.model.latent_dim, cfg.model.latent_dist, generator=gen)
    codes = cond.traversal(code, z_rows)
    cols = len(codes) // rows
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = cond.generate(G, z_rows.repeat_interleave(cols, 0).to(device), codes.to(device)).cpu()
    return x, cols


def sample(run_dir: str | Path | Sequence[str | Path], num: int, out: str | Path, seed: int = 0,
           checkpoint: Optional[str] = None, device: str = "cpu", klass: Optional[str] = None,
           vary: Optional[str] = None, with_count: bool = False):
    """Write `num` samples to out (.png grid/scatter or .npz). Returns the path written (and the number of
    samples with with_count). Several run folders sample their ensemble: an equal-weight mixture of the
    runs' generators. klass: only that class (conditional runs); vary: an InfoGAN traversal grid."""
    out = Path(out)
    if out.suffix not in (".png", ".npz"):
        raise GankitError(f"output '{out}' must end in .png or .npz")
    if num <= 0:
        raise GankitError(f"--num must be positive, got {num}")
    runs = [run_dir] if isinstance(run_dir, (str, Path)) else list(run_dir)
    nrow = None
    if klass is not None or vary:
        G, cfg, path, _ = load_generator_checkpoint(runs[0], checkpoint, device)
        if vary:
            x, nrow = traversal(G, cfg, vary, max(1, num // 8), seed, device)  # NUM/8 rows of z
            source = f"{path.stem}, varying {vary}"
        else:
            k = resolve_class(klass, G, cfg)
            x = generate(G, cfg, num, seed=seed, device=device, classes=torch.full((num,), k, dtype=torch.long))
            source = f"{path.stem}, class {k}"
    else:
        x, cfg, source = generate_mixture(runs, num, seed, checkpoint, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        centers = toy_centers(cfg.data.dataset) if cfg.is_toy else None
        save_samples(x, out, centers=centers, title=f"{len(x)} samples from {source}", nrow=nrow)
    elif x.dim() == 4:
        images = to_uint8(x).permute(0, 2, 3, 1).numpy()  # [N,C,H,W] -> [N,H,W,C] uint8
        np.savez_compressed(out, images=images)
    else:
        np.savez_compressed(out, samples=x.numpy().astype(np.float32))
    return (out, len(x)) if with_count else out
