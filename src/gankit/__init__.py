"""gankit: train, watch, evaluate and compare GANs.

The public API is imported lazily, so `gankit --help` answers without loading PyTorch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "Config": "config", "build_config": "config", "preset_names": "config",
    "train": "training", "resume": "training",
    "sample": "refine.api", "refine_samples": "refine.api", "generate": "sampling", "load_generator": "sampling",
    "export_run": "export.write",
    "evaluate": "metrics.api", "METRICS": "metrics.catalog",
    "MODELS": "models", "GENERATORS": "models", "DISCRIMINATORS": "models", "build_models": "models",
    "OBJECTIVES": "losses",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
