"""Hyper-parameter schedules: a number in the config may instead be a schedule of the training position.

    optim.lr_g: 2e-4                                   # a constant
    optim.lr_g: {linear: [2e-4, 0.0], over: 20000}     # from 2e-4 to 0 over 20,000 steps, then 0
    optim.beta2: {cosine: [0.9, 0.99], over: 5000000, per: images, burn_in: 100000}
    train.ema_half_life: {linear: [0, 500000], over: 10000000, per: images}

Kinds: `constant: V`, `linear: [START, END]`, `cosine: [START, END]` (half a cosine from START to END).
`over` is the length (after the burn-in) in steps, or in images shown with `per: images`; `burn_in` holds
START for that many steps (or images) first. A schedule is a pure function of the step, so resume continues
it exactly. The config keeps the mapping (config.yaml shows it as written); `value_at` reads it.
"""
from __future__ import annotations

import math
from typing import Any, Union

from .errors import GankitError

SHAPES = {"constant": lambda u: 0.0, "linear": lambda u: u, "cosine": lambda u: 0.5 - 0.5 * math.cos(math.pi * u)}
UNITS = ("steps", "images")
OPTIONS = ("over", "per", "burn_in")
Value = Union[float, dict]


class ScheduledFloat:
    """The annotation of a config field that takes a number or a schedule mapping (see this module)."""


def check(key: str, value: Any) -> Value:
    """A number, or a valid schedule mapping (normalised); else a one-line error naming the forms."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads '1e-4' as text
        except ValueError:
            pass
    if isinstance(value, dict):
        kinds = [k for k in value if k in SHAPES]
        unknown = [k for k in value if k not in SHAPES and k not in OPTIONS]
        if len(kinds) == 1 and not unknown:
            return _normalised(key, kinds[0], value)
    raise GankitError(f"bad value {value!r} for '{key}'; expected a number or a schedule such as "
                      "{linear: [2e-4, 0], over: 10000} (kinds: constant, linear, cosine; options: over, per "
                      "steps|images, burn_in)")


def _normalised(key: str, kind: str, value: dict) -> dict:
    ends = value[kind] if isinstance(value[kind], list) else [value[kind], value[kind]]
    out = {kind: [float(check(key, v)) for v in ends], "over": value.get("over", 1), "per": value.get("per", "steps"),
           "burn_in": value.get("burn_in", 0)}
    if len(ends) != 2 or out["per"] not in UNITS or not all(isinstance(out[k], int) and not isinstance(out[k], bool)
                                                           and out[k] >= 0 for k in ("over", "burn_in")):
        raise GankitError(f"bad schedule {value!r} for '{key}'; {kind} takes [START, END] (or one number for "
                          "constant), `over` and `burn_in` whole numbers >= 0, `per` steps or images")
    return out


def endpoints(value: Value) -> tuple[float, float]:
    """The values a schedule starts and ends at (a number: itself twice): what range checks look at."""
    if isinstance(value, dict):
        return tuple(next(v for k, v in value.items() if k in SHAPES))
    return value, value


def value_at(value: Value, step: int = 0, images: int = 0) -> float:
    """The value of a config number or schedule after `step` steps and `images` images shown."""
    if not isinstance(value, dict):
        return value
    kind = next(k for k in value if k in SHAPES)
    start, end = value[kind]
    t = images if value["per"] == UNITS[1] else step
    u = min(1.0, max(0.0, (t - value["burn_in"]) / max(value["over"], 1)))
    return start + (end - start) * SHAPES[kind](u)


def is_scheduled(value: Value) -> bool:
    return isinstance(value, dict)


def ever_positive(value: Value) -> bool:
    """Whether a penalty weight (number or schedule) is ever switched on."""
    return max(endpoints(value)) > 0
