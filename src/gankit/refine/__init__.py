"""Discriminator-guided sampling (issue 15): a trained run's D picks or moves G's samples at sampling time.

- drs: discriminator rejection sampling (Azadi et al. 2019)
- mh: Metropolis-Hastings GAN with a calibrated D (Turner et al. 2019)
- latent: Langevin (or gradient) steps on E(z) = |z|^2/2 - logit D(G(z)) (Che et al. 2020)

algorithms.py holds the methods as functions of callables (tested on exact densities); networks.py builds
those callables from a run; methods.py drives them chunk by chunk; api.py is what sample and eval call;
flags.py the command-line options. Imported lazily, so the command line parses without PyTorch.
"""
from __future__ import annotations

import importlib

_API = {"fit_logistic": "algorithms", "independent_chains": "algorithms", "langevin": "algorithms",
        "rejection_fill": "algorithms", "rejection_rule": "algorithms", "READINGS": "networks", "load_pair": "networks",
        "METHODS": "methods", "Refiner": "methods", "describe": "api", "options": "api", "refine_samples": "api",
        "refiner_for": "api", "sample": "api", "fake_set": "api"}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'gankit.refine' has no attribute {name!r}")
