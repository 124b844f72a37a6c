"""Refined sampling of a run: the options (the run's `sample` section, overridden per call), refined sample
sets for the Python API and `gankit eval`, and `gankit sample` (plain sampling when no refinement applies).

    x, report = gankit.refine_samples("runs/ring", 2500, "drs", seed=1)
    gankit.sample("runs/ring", 2500, "ring.png", refine="mh", refine_settings={"mh_chain": 200})
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..config import Config, SampleConfig, merge, validate
from ..errors import GankitError
from ..run import is_run, read_config
from ..sampling import WRITERS, Draw, check_num, resolve_class, resolve_device
from ..sampling import sample as plain_sample
from .methods import METHODS, Refiner
from .networks import load_pair

NONE = "none"


def options(cfg: Config, refine: Optional[str] = None, settings: Optional[dict] = None) -> SampleConfig:
    """The run's `sample` section with `refine` (a method, or 'none') and `settings` ({field: value} of the
    section, e.g. {'drs_percentile': 80}) over it, checked like any config value. A setting of another method
    than the one used is refused, never ignored."""
    over = dict(settings or {})
    if refine is not None:
        over["refine"] = refine
    probe = copy.deepcopy(cfg)
    validate(merge(probe, {"sample": over}))
    opts = probe.sample
    owner = {k: name for name in METHODS.names() for k in METHODS.get(name).keys}
    stray = [k for k in over if k in owner and owner[k] != opts.refine]
    if stray:
        flag = {f.name: f.metadata["sample_flag"] for f in dataclasses.fields(SampleConfig)}[stray[0]]
        raise GankitError(f"{flag} (sample.{stray[0]}) is a setting of --refine {owner[stray[0]]}, not of "
                          f"{opts.refine if opts.refine != NONE else 'plain sampling'}; drop it or pick that method")
    return opts


def _method(run: str | Path, refine: Optional[str]) -> str:
    """The method a call uses: `refine` when given, else the run's sample.refine (none for a folder without a
    config, which plain sampling then explains)."""
    if refine is not None:
        return refine
    return read_config(Path(run)).sample.refine if is_run(Path(run)) else NONE


def refiner_for(run: str | Path, refine: Optional[str] = None, settings: Optional[dict] = None, seed: int = 0,
                klass: Optional[str] = None, checkpoint: Optional[str] = None, device: str = "cpu") -> Refiner:
    """A Refiner over the run's G (its EMA when kept) and D of the same checkpoint. klass: index or name."""
    pair = load_pair(run, checkpoint, resolve_device(device))
    opts = options(pair.cfg, refine, settings)
    if opts.refine == NONE:
        raise GankitError("no refinement to apply; name one: --refine drs, mh or latent")
    k = None if klass is None else resolve_class(klass, pair.G, pair.cfg)
    return Refiner(pair, opts, seed, k)


def refine_samples(run: str | Path, num: int, refine: Optional[str] = None, seed: int = 0, klass: Optional[str] = None,
                   checkpoint: Optional[str] = None, device: str = "cpu",
                   settings: Optional[dict] = None) -> tuple[torch.Tensor, dict]:
    """num refined samples of a run ([num, ...] on the CPU; images in [-1, 1]) and the report: acceptance rate or
    steps, G and D passes and milliseconds per kept sample. refine: drs, mh or latent (default: the run's
    sample.refine). Repeatable for a seed."""
    check_num(num)
    refiner = refiner_for(run, _method(run, refine), settings, seed, klass, checkpoint, device)
    return torch.cat(list(refiner.chunks(num))), refiner.report()


def fake_set(run: str | Path, num: int, seed: int, checkpoint: Optional[str], device: str, refine: str,
             settings: Optional[dict] = None, transform: Optional[Callable] = None) -> tuple[torch.Tensor, dict]:
    """What `gankit eval` scores: num refined samples, each chunk passed through `transform` (e.g. to uint8)."""
    refiner = refiner_for(run, refine, settings, seed, None, checkpoint, device)
    return torch.cat([x if transform is None else transform(x) for x in refiner.chunks(num)]), refiner.report()


def sample(run_dir: str | Path | Sequence[str | Path], num: int, out: str | Path, seed: int = 0,
           checkpoint: Optional[str] = None, device: str = "cpu", klass: Optional[str] = None,
           vary: Optional[str] = None, with_count: bool = False, *, refine: Optional[str] = None,
           refine_settings: Optional[dict] = None, with_report: bool = False):
    """gankit.sampling.sample, refined by `refine` (drs, mh, latent, none; default: the run's sample.refine).
    Returns the path written; with_count adds the number of samples, with_report the refinement's report
    (None when plain): (path, n, report)."""
    runs = [run_dir] if isinstance(run_dir, (str, Path)) else list(run_dir)
    method = _method(runs[0], refine) if len(runs) == 1 and not vary else refine or NONE
    if method == NONE:
        if refine_settings:
            options(read_config(Path(runs[0])), NONE, refine_settings)  # says which method they belong to
        path, n = plain_sample(run_dir, num, out, seed, checkpoint, device, klass, vary, with_count=True)
        return _returned(path, n, None, with_count, with_report)
    if len(runs) > 1 or vary:
        raise GankitError("--refine takes one run folder and no --vary (ensembles and traversals are drawn plain)")
    out = Path(out)
    if out.suffix not in WRITERS:
        raise GankitError(f"output '{out}' must end in {' or '.join(WRITERS)}")
    check_num(num)
    refiner = refiner_for(runs[0], method, refine_settings, seed, klass, checkpoint, device)
    what = f", class {refiner.klass}" if refiner.klass is not None else ""
    draw = Draw(refiner.chunks(num), num, refiner.nets.pair.cfg, f"{refiner.nets.pair.path.stem}{what}, refined by {method}")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = WRITERS[out.suffix](draw, out)
    return _returned(out, n, refiner.report(), with_count, with_report)


def _returned(path: Path, n: int, report: Optional[dict], with_count: bool, with_report: bool):
    if with_report:
        return path, n, report
    return (path, n) if with_count else path


def describe(report: dict) -> str:
    """One line for people: what the refinement did and what each kept sample cost."""
    r = report
    did = {"drs": lambda: f"acceptance {r['acceptance']:.1%} (gamma {r['gamma']:.3g}, M {r['max_logit']:.3g})",
           "mh": lambda: f"chains of {r['chain_length']}, acceptance {r['acceptance']:.1%}, {r['restarts']} restarts",
           "latent": lambda: f"{r['steps']} steps, E(z) {r['energy_before']:.3g} -> {r['energy_after']:.3g}"}[r["method"]]()
    return (f"refined by {r['method']}: {did}; per kept sample {r['g_forward_per_kept']:.1f} G and "
            f"{r['d_forward_per_kept']:.1f} D passes, {r['ms_per_kept']:.2f} ms ({r['seconds']:.1f} s in all)")
