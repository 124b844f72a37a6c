"""Draw samples from a trained run: a PNG grid (or scatter plot) or an .npz array file.

Samples are generated and written in chunks, so memory stays bounded whatever --num is; --num is refused
at 0 or below and above MAX_SAMPLES, and PNG grids hold at most MAX_GRID images.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from numpy.lib import format as npformat
from torch import nn

from .conditioning import Unlabelled, mode_of
from .config import Config
from .data import to_uint8, toy_centers
from .devices import pick_device
from .errors import GankitError
from .models import sample_z
from .observe.plots import save_samples
from .run import read_checkpoint

MAX_SAMPLES = 1_000_000  # per command: more is refused (draw several files with other seeds)
MAX_GRID = 1024  # images in one PNG grid; more go to an .npz
CHUNK = 500  # samples generated (and written) at a time
AUTO = "auto"


# ---------------------------------------------------------------- bounds
def resolve_device(device: str | torch.device) -> torch.device:
    """'auto', 'cpu', 'cuda', 'cuda:1', 'mps' (or a torch.device) -> a device this machine has, else a
    one-line error saying which is missing (before any checkpoint is read onto it)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        if device != AUTO:
            raise GankitError(f"unknown device '{device}'; use auto, cpu, cuda or mps") from None
        return pick_device(AUTO)
    pick_device(dev.type)  # raises when this machine has no such device
    return dev


def available_memory() -> Optional[int]:
    """Bytes of free physical memory (os.sysconf), or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_num(num, bytes_each: int = 0, flag: str = "--num") -> int:
    """A number of samples: positive, at most MAX_SAMPLES and, when each takes `bytes_each` bytes held at
    once, fitting in the free memory."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise GankitError(f"{flag} must be a whole number of samples, got {num!r}")
    if num <= 0:
        raise GankitError(f"{flag} must be positive, got {num}")
    if num > MAX_SAMPLES:
        raise GankitError(f"{flag} {num:,} is over the limit of {MAX_SAMPLES:,} samples; draw several sets "
                          "with different --seed values")
    free = available_memory()
    if bytes_each and free is not None and num * bytes_each > free:
        raise GankitError(f"{flag} {num:,} needs about {num * bytes_each / 2**30:.1f} GiB of memory and "
                          f"{free / 2**30:.1f} GiB is free; use a smaller {flag}")
    return int(num)


# ---------------------------------------------------------------- generators
def load_generator(run_dir: str | Path, checkpoint: Optional[str] = None,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, Config, Path]:
    """Rebuild G from a run's checkpoint (newest if `checkpoint` is None), in eval mode."""
    G, cfg, path, _ = load_generator_checkpoint(run_dir, checkpoint, device)
    return G, cfg, path


def load_generator_checkpoint(run_dir: str | Path, checkpoint: Optional[str] = None,
                              device: str | torch.device = "cpu") -> tuple[nn.Module, Config, Path, dict]:
    """load_generator, plus the checkpoint dict it was read from (step, shape, ...). An exported folder
    (gankit export) or a Hugging Face Hub repo id USER/REPO of one loads like a run."""
    from .export.folder import load_exported_generator

    device = resolve_device(device)
    exported = load_exported_generator(run_dir, checkpoint, device)
    if exported is not None:
        return exported
    cfg, ckpt, path = read_checkpoint(run_dir, checkpoint, device)
    if cfg.is_translation:
        raise GankitError(f"'{run_dir}' is an image-to-image run; translate images with gankit translate")
    G, _ = mode_of(cfg.cond, ckpt.get("num_classes", 0)).build(cfg.model, tuple(ckpt["shape"]))
    G.load_state_dict(ckpt.get("G_ema") or ckpt["G"])  # the EMA weights when the run kept them
    return G.to(device).eval(), cfg, path, ckpt


def conditioning_of(G: nn.Module, cfg: Config) -> Unlabelled:
    return mode_of(cfg.cond, getattr(G, "num_classes", 0))


@torch.no_grad()
def generate_chunks(G: nn.Module, cfg: Config, num: int, seed: int = 0, batch_size: int = CHUNK,
                    device: str | torch.device = "cpu", classes: Optional[torch.Tensor] = None) -> Iterator[torch.Tensor]:
    """generate()'s samples, `batch_size` at a time (on the CPU). The global RNG (which dropout kept on at
    sampling draws from) is seeded with `seed` for these draws alone: the caller's is put back at each yield."""
    cond = conditioning_of(G, cfg)
    gen = torch.Generator().manual_seed(seed)
    ours = torch.Generator().manual_seed(seed).get_state()  # the global RNG as torch.manual_seed(seed) sets it
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        theirs = torch.get_rng_state()
        torch.set_rng_state(ours)
        try:
            z = sample_z(n, cfg.model.latent_dim, cfg.model.latent_dist, generator=gen).to(device)
            y = cond.sample(n, gen)  # drawn even when classes are given: z stays the same either way
            if classes is not None:
                y = classes[start:start + n]
            x = cond.generate(G, z, None if y is None else y.to(device)).cpu()
            ours = torch.get_rng_state()
        finally:
            torch.set_rng_state(theirs)
        yield x


def generate(G: nn.Module, cfg: Config, num: int, seed: int = 0, batch_size: int = CHUNK,
             device: str | torch.device = "cpu", classes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[num, ...] samples; images in [-1, 1]. Repeatable for a given seed; leaves the global RNG as it was.
    A class-conditional G draws `classes` [num] (default: uniform classes); InfoGAN's G random codes
    (`traversal` walks one code)."""
    return torch.cat(list(generate_chunks(G, cfg, num, seed, batch_size, device, classes)))


class _Next:
    """Hands out the next n samples of a stream of chunks."""

    def __init__(self, chunks: Iterable[torch.Tensor]):
        self.chunks, self.left = iter(chunks), None

    def take(self, n: int) -> torch.Tensor:
        parts = []
        while n > 0:
            if self.left is None or not len(self.left):
                self.left = next(self.chunks)
            part, self.left = self.left[:n], self.left[n:]
            parts.append(part)
            n -= len(part)
        return torch.cat(parts)


def _open_ensemble(runs: Sequence[str | Path], checkpoint: Optional[str], device) -> list:
    loaded = [load_generator_checkpoint(r, checkpoint, device) for r in runs]
    shapes = {tuple(g[3]["shape"]) for g in loaded}
    if len(shapes) > 1:
        raise GankitError(f"the runs of an ensemble must make samples of one shape, got {sorted(shapes)}")
    return [g[:3] for g in loaded]


def ensemble_chunks(gens: list, num: int, seed: int = 0, device="cpu", chunk: int = CHUNK) -> Iterator[torch.Tensor]:
    """An equal-weight mixture of generators [(G, cfg, path), ...], chunk by chunk: each sample's member is
    drawn uniformly, and member i gives its own draws in order (its generate(..., seed * 1000 + i))."""
    gen = torch.Generator().manual_seed(seed)
    component = torch.randint(len(gens), (num,), generator=gen)  # [num] which member draws each sample
    counts = torch.bincount(component, minlength=len(gens)).tolist()
    members = [_Next(generate_chunks(G, cfg, n, seed=seed * 1000 + i, device=device))
               for i, ((G, cfg, _), n) in enumerate(zip(gens, counts))]
    for start in range(0, num, chunk):
        which = component[start:start + chunk]
        out = None
        for i, member in enumerate(members):
            where = (which == i).nonzero().squeeze(1)
            if len(where):
                x = member.take(len(where))
                out = torch.empty((len(which), *x.shape[1:]), dtype=x.dtype) if out is None else out
                out[where] = x
        yield out


def generate_mixture(runs: Sequence[str | Path], num: int, seed: int = 0, checkpoint: Optional[str] = None,
                     device: str = "cpu") -> tuple[torch.Tensor, Config, str]:
    """Samples of an ensemble of runs (e.g. the same GAN trained with different seeds) as an equal-weight
    mixture (see ensemble_chunks). Returns (samples, first config, description)."""
    draw = _draw_ensemble(_open_ensemble(runs, checkpoint, device), num, seed, device)
    return torch.cat(list(draw.chunks)), draw.cfg, draw.source


def resolve_class(klass: str, G: nn.Module, cfg: Config) -> int:
    """A class given by index or name -> its index (clear error otherwise)."""
    from .metrics.classes import class_names

    K = getattr(G, "num_classes", 0)
    if not conditioning_of(G, cfg).takes_class:
        raise GankitError(f"--class needs a class-conditional run (cond.mode cgan or acgan); this run has "
                          f"cond.mode={cfg.cond.mode}")
    names = getattr(G, "class_names", None) or class_names(cfg, K)  # an exported G carries its classes
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


# ---------------------------------------------------------------- gankit sample
@dataclass
class Draw:
    """What `gankit sample` writes: its samples chunk by chunk, how many, and what they are."""
    chunks: Iterable[torch.Tensor]
    total: int
    cfg: Config
    source: str
    nrow: Optional[int] = None  # images per row of a PNG grid (None: square)


def _draw_ensemble(gens: list, num: int, seed: int, device) -> Draw:
    if len(gens) == 1:
        G, cfg, path = gens[0]
        return Draw(generate_chunks(G, cfg, num, seed, device=device), num, cfg, path.stem)
    return Draw(ensemble_chunks(gens, num, seed, device), num, gens[0][1], f"an ensemble of {len(gens)} runs")


def _draw(runs: list, num: int, seed: int, checkpoint: Optional[str], device, klass: Optional[str],
          vary: Optional[str]) -> Draw:
    if klass is None and not vary:
        return _draw_ensemble(_open_ensemble(runs, checkpoint, device), num, seed, device)
    if len(runs) > 1:
        raise GankitError("--class and --vary take one run folder, not an ensemble")
    G, cfg, path, _ = load_generator_checkpoint(runs[0], checkpoint, device)
    if vary:
        if num > MAX_GRID:
            raise GankitError(f"--vary draws one traversal grid of at most {MAX_GRID:,} images; lower --num")
        x, cols = traversal(G, cfg, vary, max(1, num // 8), seed, device)  # NUM/8 rows of z
        return Draw([x], len(x), cfg, f"{path.stem}, varying {vary}", cols)
    k = resolve_class(klass, G, cfg)
    classes = torch.full((num,), k, dtype=torch.long)
    return Draw(generate_chunks(G, cfg, num, seed, device=device, classes=classes), num, cfg, f"{path.stem}, class {k}")


def _write_png(draw: Draw, out: Path) -> int:
    if not draw.cfg.is_toy and draw.total > MAX_GRID:
        raise GankitError(f"a PNG grid of {draw.total:,} images is too large (at most {MAX_GRID:,}); write "
                          f"them to an .npz instead (--out {out.with_suffix('.npz').name})")
    x = torch.cat(list(draw.chunks))
    centers = toy_centers(draw.cfg.data.dataset) if draw.cfg.is_toy else None
    save_samples(x, out, centers=centers, title=f"{len(x)} samples from {draw.source}", nrow=draw.nrow)
    return len(x)


def _as_array(x: torch.Tensor) -> np.ndarray:
    """Images [N,C,H,W] in [-1, 1] -> uint8 [N,H,W,C]; points -> float32 [N,2]."""
    return to_uint8(x).permute(0, 2, 3, 1).numpy() if x.dim() == 4 else x.numpy().astype(np.float32)


def _write_npz(draw: Draw, out: Path) -> int:
    """The samples as one .npy member of an .npz (key images, or samples for 2-D points), written chunk by
    chunk into a temporary file renamed over `out` when complete."""
    tmp = out.with_name(f".{out.name}.tmp")
    n = 0
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            chunks = iter(draw.chunks)
            first = _as_array(next(chunks))
            key = "images" if first.ndim == 4 else "samples"
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                npformat.write_array_header_1_0(f, {"descr": npformat.dtype_to_descr(first.dtype),
                                                    "fortran_order": False, "shape": (draw.total, *first.shape[1:])})
                for a in _chain(first, chunks):
                    f.write(np.ascontiguousarray(a).tobytes())
                    n += len(a)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _chain(first: np.ndarray, rest: Iterator[torch.Tensor]) -> Iterator[np.ndarray]:
    yield first
    for x in rest:
        yield _as_array(x)


WRITERS = {".png": _write_png, ".npz": _write_npz}


def sample(run_dir: str | Path | Sequence[str | Path], num: int, out: str | Path, seed: int = 0,
           checkpoint: Optional[str] = None, device: str = "cpu", klass: Optional[str] = None,
           vary: Optional[str] = None, with_count: bool = False):
    """Write `num` samples to out (.png grid/scatter or .npz). Returns the path written (and the number of
    samples with with_count). Several run folders sample their ensemble: an equal-weight mixture of the
    runs' generators. klass: only that class (conditional runs); vary: an InfoGAN traversal grid."""
    out = Path(out)
    if out.suffix not in WRITERS:
        raise GankitError(f"output '{out}' must end in {' or '.join(WRITERS)}")
    check_num(num)
    runs = [run_dir] if isinstance(run_dir, (str, Path)) else list(run_dir)
    draw = _draw(runs, num, seed, checkpoint, resolve_device(device), klass, vary)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = WRITERS[out.suffix](draw, out)
    return (out, n) if with_count else out
