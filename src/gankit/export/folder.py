"""An exported generator folder (written by `gankit export`), in the Hugging Face Hub layout:

    DIR/model.safetensors   the generator(s) only, EMA weights when the run kept them; keys '<net>.<name>'
                            (G.*; CycleGAN: G_AB.* and G_BA.*): no discriminator, no optimizer state
    DIR/config.json         what it is: format, gankit version, family, data shape, latent size and
                            distribution, classes, the source checkpoint, the run's full config, ONNX facts
    DIR/README.md           the model card;  DIR/samples.png  a sample grid
    DIR/model.onnx          with --format onnx (CycleGAN also model-BtoA.onnx)

Reading one never runs code: config.json is parsed as JSON (at most MAX_CONFIG_BYTES), each key checked
and the run's config rebuilt by gankit's config schema (unknown keys, bad types and out-of-range values
refused). The networks it describes are first built on fake tensors (no memory), and the weights file's
names, shapes and dtypes, read from its safetensors header, must match them before any tensor is read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..config import Config, config_from_dict
from ..errors import GankitError
from ..run import is_run
from . import hub

FORMAT, FORMAT_VERSION = "gankit-generator", 1
CONFIG, WEIGHTS, CARD, SAMPLES, ONNX = "config.json", "model.safetensors", "README.md", "samples.png", "model.onnx"
MAX_CONFIG_BYTES = 4 << 20  # a config.json is a few kB; more is not a config
MAX_WEIGHTS_BYTES = 8 << 30
MAX_CLASSES, MAX_LIST = 100_000, 256  # classes of a labelled run; entries of any list in the config (layers, codes)
GAN = "gan"  # the family of GANs from z (the image-to-image families are named by their model)


@dataclass
class Exported:
    """A validated exported folder: what config.json says, checked."""
    folder: Path
    cfg: Config
    shape: tuple
    num_classes: int
    class_names: list
    networks: tuple
    meta: dict = field(repr=False)

    @property
    def ckpt(self) -> dict:
        """What sampling and translation read from a checkpoint dict."""
        return {"shape": list(self.shape), "num_classes": self.num_classes, "step": self.meta["source"]["step"],
                "config": self.cfg.to_dict()}


# ---------------------------------------------------------------- what a config builds
def family_of(cfg: Config) -> str:
    return cfg.model.name if cfg.is_translation else GAN


def networks_of(cfg: Config) -> tuple[str, ...]:
    """The generators an export holds: G, or the translators of each direction (CycleGAN: G_AB, G_BA)."""
    if not cfg.is_translation:
        return ("G",)
    from ..models.translation import TRANSLATORS

    return tuple(dict.fromkeys(TRANSLATORS.get(cfg.model.name).directions.values()))


def build_networks(cfg: Config, shape: tuple, num_classes: int) -> dict[str, nn.Module]:
    """The generators of networks_of(cfg), freshly initialised (their discriminators are built and dropped)."""
    if cfg.is_translation:
        from ..models.translation import build_translators

        nets = build_translators(cfg, shape[0], shape[1])
    else:
        from ..conditioning import mode_of

        nets = {"G": mode_of(cfg.cond, num_classes).build(cfg.model, tuple(shape))[0]}
    return {k: nets[k] for k in networks_of(cfg)}


def expected_tensors(cfg: Config, shape: tuple, num_classes: int) -> dict[str, tuple[tuple, torch.dtype]]:
    """'<net>.<name>' -> (shape, dtype) of every tensor the config's generators hold, from a build on fake
    tensors: a config that describes a huge network allocates nothing here."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    try:
        with FakeTensorMode():
            nets = build_networks(cfg, shape, num_classes)
            return {f"{k}.{n}": (tuple(t.shape), t.dtype) for k, net in nets.items() for n, t in net.state_dict().items()}
    except GankitError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError) as e:
        raise GankitError(f"the config in the exported folder does not build a generator ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120] if str(e) else ''}); export the run again") from None


# ---------------------------------------------------------------- config.json
def _is_int(v: Any, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _check_lists(values: Any, where: str = "config") -> None:
    """No list of the config longer than MAX_LIST (each entry of a hidden-size list is a layer to build)."""
    if isinstance(values, dict):
        for k, v in values.items():
            _check_lists(v, f"{where}.{k}")
    elif isinstance(values, list) and len(values) > MAX_LIST:
        raise GankitError(f"'{where}' in config.json has {len(values)} entries (at most {MAX_LIST}); export the run again")


# key -> (required, check of its value)
_KEYS = {
    "format": (True, lambda v: v == FORMAT), "format_version": (True, lambda v: v == FORMAT_VERSION),
    "gankit_version": (False, lambda v: isinstance(v, str) and len(v) < 64),
    "family": (True, lambda v: isinstance(v, str)), "networks": (True, lambda v: isinstance(v, list)),
    "ema": (False, lambda v: isinstance(v, bool)),
    "shape": (True, lambda v: isinstance(v, list) and len(v) in (1, 3) and all(_is_int(s, 1, 4096) for s in v)),
    "latent": (False, lambda v: v is None or isinstance(v, dict)),
    "conditioning": (True, lambda v: isinstance(v, dict) and _is_int(v.get("num_classes"), 0, MAX_CLASSES)),
    "class_names": (False, lambda v: isinstance(v, list) and all(isinstance(n, str) and len(n) <= 200 for n in v)),
    "directions": (False, lambda v: v is None or isinstance(v, dict)),
    "source": (True, lambda v: isinstance(v, dict) and _is_int(v.get("step"), 0, 2**62)),
    "config": (True, lambda v: isinstance(v, dict)),
    "onnx": (False, lambda v: v is None or isinstance(v, dict)),
}


def read_meta(folder: Path) -> dict:
    """config.json as a dict, its keys and their values' shapes checked (not yet the run's config)."""
    path = folder / CONFIG
    if not path.is_file():
        raise GankitError(f"'{folder}' has no {CONFIG}; give a folder written by gankit export")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise GankitError(f"'{path}' is {path.stat().st_size:,} bytes, over the {MAX_CONFIG_BYTES >> 20} MiB limit for "
                          "an exported config; export the run again")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise GankitError(f"'{path}' is not a JSON config ({type(e).__name__}); export the run again") from None
    if not isinstance(meta, dict):
        raise GankitError(f"'{path}' must hold a JSON object; export the run again")
    unknown = sorted(set(meta) - set(_KEYS))
    if unknown:
        raise GankitError(f"unknown key '{unknown[0][:40]}' in '{path}'; valid: {', '.join(_KEYS)}")
    for key, (required, ok) in _KEYS.items():
        if key not in meta and required:
            raise GankitError(f"'{path}' lacks '{key}'; give a folder written by gankit export")
        if key in meta and not ok(meta[key]):
            raise GankitError(f"bad value for '{key}' in '{path}': {str(meta[key])[:60]!r}; export the run again")
    return meta


def _consistent(meta: dict, cfg: Config, path: Path) -> None:
    """The facts config.json states beside the run's config agree with it."""
    latent = meta.get("latent") or {}
    checks = {"family": meta["family"] == family_of(cfg), "networks": tuple(meta["networks"]) == networks_of(cfg),
              "latent": cfg.is_translation or latent == {"dim": cfg.model.latent_dim, "distribution": cfg.model.latent_dist},
              "shape": cfg.is_toy == (len(meta["shape"]) == 1),
              "class_names": len(meta.get("class_names", [])) <= meta["conditioning"]["num_classes"]}
    wrong = [k for k, ok in checks.items() if not ok]
    if wrong:
        raise GankitError(f"'{wrong[0]}' in '{path}' does not match the run's config it holds; export the run again")


def read_exported(folder: Path) -> Exported:
    """A validated exported folder (its weights not read yet)."""
    meta = read_meta(folder)
    _check_lists(meta["config"])
    try:
        cfg = config_from_dict(meta["config"])
    except GankitError as e:
        raise GankitError(f"the run config in '{folder / CONFIG}' is refused: {e}") from None
    _consistent(meta, cfg, folder / CONFIG)
    k = meta["conditioning"]["num_classes"]
    names = meta.get("class_names") or [str(i) for i in range(k)]
    return Exported(folder, cfg, tuple(meta["shape"]), k, names, networks_of(cfg), meta)


# ---------------------------------------------------------------- model.safetensors
def read_weights(ex: Exported, device: torch.device | str = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """The generators' state dicts from model.safetensors, by network; names, shapes and dtypes checked
    against the networks the config builds before a tensor is read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = ex.folder / WEIGHTS
    if not path.is_file():
        raise GankitError(f"'{ex.folder}' has no {WEIGHTS}; give a folder written by gankit export")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise GankitError(f"'{path}' is over {MAX_WEIGHTS_BYTES >> 30} GiB, more than a gankit generator holds")
    want = expected_tensors(ex.cfg, ex.shape, ex.num_classes)
    try:
        with safe_open(str(path), framework="pt") as f:
            have = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        if have != {k: s for k, (s, _) in want.items()}:
            raise GankitError(_mismatch(path, have, want))
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GankitError(f"'{path}' is not a safetensors file of this generator ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:100] if str(e) else ''}); export the run again") from None
    bad = next((k for k, t in tensors.items() if t.dtype != want[k][1]), None)
    if bad:
        raise GankitError(f"tensor '{bad}' in '{path}' is {tensors[bad].dtype}, the generator needs {want[bad][1]}")
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in ex.networks}
    for key, t in tensors.items():
        net, name = key.split(".", 1)
        out[net][name] = t
    return out


def _mismatch(path: Path, have: dict, want: dict) -> str:
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"holds '{extra[0][:60]}', which the generator has not"
        return f"'{path}' {what} ({len(missing)} missing, {len(extra)} unexpected); it is not this config's generator"
    k = next(k for k in want if have[k] != want[k][0])
    return (f"tensor '{k}' in '{path}' has shape {list(have[k])}, the generator built from config.json needs "
            f"{list(want[k][0])}; export the run again")


def load_networks(ex: Exported, device: torch.device | str = "cpu") -> dict[str, nn.Module]:
    """The exported generators with their weights, in eval mode on `device`."""
    weights = read_weights(ex, "cpu")
    nets = build_networks(ex.cfg, ex.shape, ex.num_classes)
    for k, net in nets.items():
        net.load_state_dict(weights[k])
        net.to(device).eval()
    return nets


# ---------------------------------------------------------------- where sampling and translation come in
def is_exported(path: Path) -> bool:
    """A folder with a config.json that is not a run folder."""
    return (Path(path) / CONFIG).is_file() and not is_run(Path(path))


def exported_folder(source: str | Path) -> Optional[Path]:
    """The local exported folder `source` names (downloaded first when it is a Hub repo id USER/REPO), or
    None when it names a run folder or nothing (the run code reports those)."""
    path = Path(source)
    if path.is_dir():
        return path if is_exported(path) else None
    return hub.download(str(source)) if hub.is_repo_id(source) else None


def refuse_exported(source: str | Path, what: str) -> None:
    """Refuse an exported folder (or Hub repo id) where `what` (e.g. '--refine') needs a run's discriminator or
    training state, which an export does not hold."""
    if (Path(source).is_dir() and is_exported(Path(source))) or hub.is_repo_id(source):
        raise GankitError(f"'{source}' is an exported generator (G alone: no discriminator, no training state); {what} "
                          "needs the run folder it was exported from")


def _open(source: str | Path, checkpoint: Optional[str]) -> Optional[Exported]:
    folder = exported_folder(source)
    if folder is None:
        return None
    if checkpoint is not None:
        raise GankitError(f"'{source}' is an exported generator (one set of weights): drop --checkpoint, which picks "
                          "among a run's checkpoints")
    return read_exported(folder)


def load_exported_generator(source: str | Path, checkpoint: Optional[str] = None,
                            device: torch.device | str = "cpu") -> Optional[tuple[nn.Module, Config, Path, dict]]:
    """(G, cfg, folder, checkpoint-like dict) of an exported GAN, as sampling.load_generator_checkpoint
    returns for a run; None when `source` is not an exported folder or Hub repo. G.class_names holds the
    classes of a labelled run (their dataset may not exist where the folder is used)."""
    ex = _open(source, checkpoint)
    if ex is None:
        return None
    if ex.cfg.is_translation:
        raise GankitError(f"'{source}' is an exported image-to-image generator; translate images with gankit translate")
    G = load_networks(ex, device)["G"]
    G.class_names = list(ex.class_names)
    return G, ex.cfg, ex.folder, ex.ckpt


def load_exported_translators(source: str | Path, checkpoint: Optional[str] = None,
                              device: torch.device | str = "cpu") -> Optional[tuple[dict, Config, dict]]:
    """(networks by name, cfg, checkpoint-like dict) of an exported Pix2Pix or CycleGAN, as
    metrics.translation.load_translation_run returns for a run; None when `source` is not an export."""
    ex = _open(source, checkpoint)
    if ex is None:
        return None
    if not ex.cfg.is_translation:
        raise GankitError(f"'{source}' is an exported generator from z, not image-to-image; use gankit sample")
    return load_networks(ex, device), ex.cfg, ex.ckpt

