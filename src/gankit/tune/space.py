"""The search space of `gankit tune`: a YAML file naming config keys with distributions,

    optim.lr_g: {log_uniform: [1.0e-5, 1.0e-3]}
    optim.beta1: {uniform: [0.0, 0.9]}
    model.g_width: {int: [16, 64]}
    loss.name: {categorical: [nonsat, hinge, lsgan]}

read with gankit's safe YAML loader; every key and every end of every range (each choice) is checked against
the config schema, on top of the tuned preset, before any trial starts.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from .. import safeyaml
from ..config import merge, validate
from ..errors import GankitError

MAX_SPACE_BYTES = 64 << 10
TUNE_SETS = ("train.out", "train.minutes", "train.epochs", "train.max_steps", "train.threads")  # chosen by tune itself
FORMS = "log_uniform: [low, high], uniform: [low, high], int: [low, high] or categorical: [a, b, ...]"


@dataclass(frozen=True)
class Param:
    """One tuned config key and its distribution."""
    key: str  # SECTION.NAME, e.g. optim.lr_g (also the Optuna parameter name)
    kind: str  # a key of DISTRIBUTIONS
    args: tuple  # (low, high) or the choices

    def suggest(self, trial) -> Any:
        return DISTRIBUTIONS[self.kind].suggest(trial, self.key, self.args)


@dataclass(frozen=True)
class Distribution:
    check: Callable[[str, list], tuple]  # (key, the YAML list) -> args, or a one-line error
    suggest: Callable[[Any, str, tuple], Any]  # (optuna trial, name, args) -> value


def _number(key: str, v: Any, whole: bool) -> float:
    if isinstance(v, str):  # YAML 1.1 reads 1e-5 as text
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (whole and v != int(v)):
        raise GankitError(f"'{key}': {v!r} is not a {'whole number' if whole else 'number'}")
    return int(v) if whole else float(v)


def _range(whole: bool = False, positive: bool = False) -> Callable[[str, list], tuple]:
    def check(key: str, args: list) -> tuple:
        if not isinstance(args, list) or len(args) != 2:
            raise GankitError(f"'{key}' needs [low, high], got {args!r}")
        low, high = (_number(key, v, whole) for v in args)
        if not low < high:
            raise GankitError(f"'{key}': low {low} must be below high {high}")
        if positive and low <= 0:
            raise GankitError(f"'{key}': a log_uniform range must be positive, got low {low}")
        return low, high
    return check


def _choices(key: str, args: list) -> tuple:
    if not isinstance(args, list) or not args:
        raise GankitError(f"'{key}' needs a list of choices, got {args!r}")
    bad = [a for a in args if not (a is None or isinstance(a, (bool, int, float, str)))]
    if bad:
        raise GankitError(f"'{key}': choice {bad[0]!r} is not a plain value (text, number, true/false or null)")
    if len(set(map(repr, args))) < len(args):
        raise GankitError(f"'{key}': a choice is listed twice")
    return tuple(args)


DISTRIBUTIONS = {
    "log_uniform": Distribution(_range(positive=True), lambda t, k, a: t.suggest_float(k, a[0], a[1], log=True)),
    "uniform": Distribution(_range(), lambda t, k, a: t.suggest_float(k, a[0], a[1])),
    "int": Distribution(_range(whole=True), lambda t, k, a: t.suggest_int(k, a[0], a[1])),
    "categorical": Distribution(_choices, lambda t, k, a: t.suggest_categorical(k, list(a))),
}


def _read(path: Path) -> Any:
    if not path.is_file():
        raise GankitError(f"space file '{path}' not found; give a YAML file of KEY: {{distribution: ...}} lines")
    if path.stat().st_size > MAX_SPACE_BYTES:
        raise GankitError(f"space file '{path}' is over {MAX_SPACE_BYTES >> 10} KB; a space names a few keys")
    try:
        return safeyaml.load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise GankitError(f"space file '{path}' is not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise GankitError(f"space file '{path}' is not valid YAML ({str(e).splitlines()[0]}); fix the file") from None


def _param(key: Any, spec: Any, base) -> Param:
    """One line of the space, checked: a config key, one known distribution, values the config accepts."""
    section, dot, name = str(key).partition(".")
    if not dot or not name:
        raise GankitError(f"'{key}' is not a config key; name one as SECTION.KEY, e.g. optim.lr_g")
    if key in TUNE_SETS:
        raise GankitError(f"'{key}' is set by gankit tune itself (--minutes, --out, --jobs); remove it")
    merge(copy.deepcopy(base), {section: {name: getattr(getattr(base, section, None), name, None)}})  # a known key
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise GankitError(f"'{key}' needs one distribution: {FORMS}; got {spec!r}")
    kind, raw = next(iter(spec.items()))
    param = Param(key, kind, DISTRIBUTIONS[kind].check(key, raw))
    for value in param.args:  # every choice, or both ends of the range
        validate(merge(copy.deepcopy(base), {section: {name: value}}))
    return param


def load_space(path: str | Path, base) -> tuple[Param, ...]:
    """The parameters of a space file, each checked on top of `base` (the tuned preset's config)."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict) or not data:
        raise GankitError(f"space file '{path}' must map config keys to distributions, e.g. "
                          "optim.lr_g: {log_uniform: [1.0e-5, 1.0e-3]}")
    try:
        return tuple(_param(key, spec, base) for key, spec in data.items())
    except GankitError as e:
        raise GankitError(f"space file '{path}': {e}") from None


def suggest(space: tuple[Param, ...], trial) -> dict:
    """A trial's values as a config override: {section: {name: value}}."""
    out: dict = {}
    for p in space:
        section, _, name = p.key.partition(".")
        out.setdefault(section, {})[name] = p.suggest(trial)
    return out


def describe(space: tuple[Param, ...]) -> dict:
    """The space as plain data (recorded in the study, to refuse a different space on a re-run)."""
    return {p.key: {p.kind: list(p.args)} for p in space}
