"""`gankit export RUN`: a run's generator -> a self-describing folder (layout: gankit.export.folder), with
ONNX on request and a push to the Hugging Face Hub.

The folder is written in a temporary sibling and renamed into place when complete; before that, its
weights are read back through the same loader users get (the samples.png of a GAN is drawn from them),
and an ONNX graph is kept only when onnxruntime matches PyTorch (gankit.export.graph).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import torch

from ..config import Config
from ..errors import GankitError
from ..run import read_checkpoint
from . import hub
from .folder import (
    CARD,
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    SAMPLES,
    WEIGHTS,
    family_of,
    load_networks,
    networks_of,
    read_exported,
    refuse_exported,
)

FORMATS = {"safetensors": False, "onnx": True}  # --format -> whether model.onnx is written too
GRID_ROWS = 8  # samples per class row in the grid of a class-conditional generator (64 samples otherwise)
FINAL = "final.png"  # the sample strip a run writes at its end


def export_meta(cfg: Config, ckpt: dict, checkpoint: Path, run: Path, ema: bool) -> dict:
    """What config.json says about the generator (folder.read_meta checks it on the way back)."""
    from .. import __version__
    from ..conditioning import mode_of
    from ..metrics.classes import class_names

    k = int(ckpt.get("num_classes", 0))
    labelled = not cfg.is_translation and mode_of(cfg.cond, k).needs_labels
    directions = None
    if cfg.is_translation:
        from ..models.translation import TRANSLATORS

        directions = dict(TRANSLATORS.get(cfg.model.name).directions)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "gankit_version": __version__, "family": family_of(cfg),
            "networks": list(networks_of(cfg)), "ema": ema, "shape": [int(s) for s in ckpt["shape"]],
            "latent": None if cfg.is_translation else {"dim": cfg.model.latent_dim, "distribution": cfg.model.latent_dist},
            "conditioning": {"mode": cfg.cond.mode, "num_classes": k},
            "class_names": class_names(cfg, k) if labelled else [], "directions": directions,
            "source": {"run": run.resolve().name, "checkpoint": checkpoint.name, "step": int(ckpt["step"])},
            "config": cfg.to_dict(), "onnx": None}


def _write_json(path: Path, meta: dict) -> None:
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def write_weights(folder: Path, cfg: Config, ckpt: dict) -> bool:
    """model.safetensors: the generators alone (their EMA when the run kept one). Returns whether EMA."""
    from safetensors.torch import save_file

    from .. import __version__

    names = networks_of(cfg)
    ema = all(f"{k}_ema" in ckpt for k in names)
    tensors = {f"{k}.{n}": t.detach().to("cpu").clone().contiguous()
               for k in names for n, t in ckpt[f"{k}_ema" if ema else k].items()}
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "pt", "gankit_version": __version__})
    return ema


def write_samples(folder: Path, nets: dict, ex, run: Path) -> bool:
    """samples.png: a grid drawn from the exported G (one class per row for a class-conditional G), or,
    for image-to-image, the run's newest sample strip. Returns whether one was written."""
    from ..data import toy_centers
    from ..observe.plots import save_samples
    from ..sampling import conditioning_of, generate

    cfg = ex.cfg
    if cfg.is_translation:
        strips = sorted((run / "samples").glob("*.png"), key=lambda p: (p.name == FINAL, p.stat().st_mtime))
        if strips:
            shutil.copyfile(strips[-1], folder / SAMPLES)
        return bool(strips)
    G = nets["G"]
    rows = conditioning_of(G, cfg).takes_class and ex.num_classes <= 16
    classes = torch.arange(ex.num_classes).repeat_interleave(GRID_ROWS) if rows else None
    x = generate(G, cfg, 64 if classes is None else len(classes), seed=0, classes=classes)
    centers = toy_centers(cfg.data.dataset) if cfg.is_toy else None
    save_samples(x, folder / SAMPLES, centers=centers, title=f"{len(x)} samples (seed 0)", nrow=GRID_ROWS if rows else None)
    return True


def write_folder(folder: Path, run: Path, cfg: Config, ckpt: dict, checkpoint: Path, onnx: bool, license: str) -> dict:
    """Everything of an export into `folder` (empty). Returns config.json's contents."""
    from ..metrics.history import read_history
    from .card import model_card

    ema = write_weights(folder, cfg, ckpt)
    meta = export_meta(cfg, ckpt, checkpoint, run, ema)
    _write_json(folder / CONFIG, meta)
    ex = read_exported(folder)  # read back as users will: the same checks, the same networks
    nets = load_networks(ex)
    has_samples = write_samples(folder, nets, ex, run)
    if onnx:
        from .graph import export_onnx

        meta["onnx"] = export_onnx(nets, ex, folder)
        _write_json(folder / CONFIG, meta)
    rows = read_history(run / "metrics.json")
    (folder / CARD).write_text(model_card(meta, cfg, rows, has_samples, license))
    return meta


def _readable(folder: Path) -> None:
    """The modes a new folder and files get under the umask (mkdtemp made the folder private, safetensors
    its file): an export is meant to be shared."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.iterdir():
        p.chmod(0o666 & ~umask)


def _target(out: str | Path) -> Path:
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise GankitError(f"--out '{target}' is a file; give a new folder for the export")
    if target.is_dir() and any(target.iterdir()):
        raise GankitError(f"--out '{target}' already exists and is not empty; give a new folder for the export")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def export_run(run: str | Path, out: Optional[str | Path] = None, format: str = "safetensors",
               checkpoint: Optional[str] = None, push_to_hub: Optional[str] = None, license: str = "other",
               private: bool = False) -> dict:
    """Export a run's generator (newest checkpoint, or `checkpoint`) to the folder `out` and/or the Hub repo
    `push_to_hub`. Returns {folder, url, step, checkpoint, files, onnx}."""
    if format not in FORMATS:
        raise GankitError(f"unknown export format '{format}'; available: {', '.join(FORMATS)}")
    if out is None and push_to_hub is None:
        raise GankitError("give --out DIR for the exported folder, or --push-to-hub USER/REPO")
    run = Path(run)
    refuse_exported(run, "gankit export")  # an export holds no checkpoint to export again
    cfg, ckpt, path = read_checkpoint(run, checkpoint, "cpu")
    target = _target(out) if out is not None else None
    tmp = Path(tempfile.mkdtemp(prefix=".gankit-export-", dir=target.parent if target else None))
    try:
        meta = write_folder(tmp, run, cfg, ckpt, path, FORMATS[format], license)
        files = sorted(p.name for p in tmp.iterdir())
        _readable(tmp)
        if target is not None:
            os.replace(tmp, target)
        url = None
        if push_to_hub:
            try:
                url = hub.push(target or tmp, push_to_hub, private)
            except GankitError as e:
                raise GankitError(f"{e} (the export is in '{target}')" if target else str(e)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"folder": target, "url": url, "step": meta["source"]["step"], "checkpoint": path.name, "files": files,
            "onnx": meta["onnx"]}
