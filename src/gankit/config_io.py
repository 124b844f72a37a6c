"""Reading and writing configuration: shipped YAML presets, config files, --set overrides, config.yaml."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from . import safeyaml
from .config_check import TOY_DATASETS
from .errors import GankitError

MAX_CONFIG_BYTES = 1 << 20


# ---------------------------------------------------------------- presets
def preset_names() -> list[str]:
    files = resources.files("gankit.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    if name not in preset_names():
        raise GankitError(f"unknown preset '{name}'; available: {', '.join(preset_names())}")
    text = resources.files("gankit.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


# `gankit train` with no --preset, by measurement (README, Results): the tuned DCGAN where it was measured to win
MEASURED_DEFAULTS = {"fashion-mnist": "dcgan-tuned", "stacked-fashion-mnist": "dcgan-stacked"}


def default_preset_for(dataset: Optional[str]) -> str:
    """`gankit train` with no --preset: the toy preset for 2-D data, the tuned DCGAN on Fashion-MNIST (the default
    dataset), DCGAN with a slow EMA of G on Stacked Fashion-MNIST, else DCGAN."""
    if dataset in TOY_DATASETS:
        return "toy"
    return MEASURED_DEFAULTS.get(dataset or "fashion-mnist", "dcgan")


# ---------------------------------------------------------------- overrides and files
def parse_override(text: str) -> dict:
    """'model.g_width=32' -> {'model': {'g_width': 32}} (the value is parsed as YAML; numbers like
    1e-4, which YAML 1.1 reads as text, become floats when the key expects one)."""
    key, has_value, raw = text.partition("=")
    section, has_dot, name = key.partition(".")
    if not (has_value and has_dot):
        raise GankitError(f"bad override '{text}'; expected SECTION.KEY=VALUE, e.g. optim.lr_g=1e-4")
    try:
        value = safeyaml.load(raw)
    except safeyaml.YAMLLimit as e:
        raise GankitError(f"override '{key}' refused: {e}; give a plain value") from None
    except yaml.YAMLError:
        value = raw
    return {section: {name: value}}


def load_yaml(path: str | Path) -> dict:
    """A config file (or a run's config.yaml): at most 1 MB of UTF-8 YAML, without alias bombs."""
    p = Path(path)
    if not p.is_file():
        raise GankitError(f"config file '{p}' not found; give the path of a YAML file")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise GankitError(f"config file '{p}' is {p.stat().st_size} bytes, over the 1 MB limit for a config; "
                          "give a config file, not data")
    try:
        data = safeyaml.load(p.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise GankitError(f"config file '{p}' is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except safeyaml.YAMLLimit as e:
        raise GankitError(f"config file '{p}' refused: {e}; write the values out plainly") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0]
        raise GankitError(f"config file '{p}' is not valid YAML ({first}); fix the file") from None
    return data


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
