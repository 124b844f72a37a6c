"""The options of `gankit sample` and `gankit eval` that override a run's `sample` section: --refine METHOD
and each method's settings, read from the fields' `sample_flag` metadata (config.SampleConfig)."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Optional

from ..config import SampleConfig

OFF = ("off", "none", "null")  # what the option of an optional field takes for null


def _or_off(tp: type) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() in OFF else tp(text)

    parse.__name__ = tp.__name__  # argparse then says "invalid float value: 'x'"
    return parse


def add_refine_options(p: argparse.ArgumentParser) -> None:
    """--refine and the settings of each method; an option left out is absent from the parsed arguments."""
    g = p.add_argument_group("discriminator-guided sampling (default: the run's config section `sample`)")
    hints = typing.get_type_hints(SampleConfig)
    for f in dataclasses.fields(SampleConfig):
        args = typing.get_args(hints[f.name])
        choices = args if typing.get_origin(hints[f.name]) is typing.Literal else None
        tp = next((a for a in args if a is not type(None)), str) if args else hints[f.name]
        g.add_argument(f.metadata["sample_flag"], dest=f"sample.{f.name}", default=argparse.SUPPRESS, choices=choices,
                       type=_or_off(tp) if type(None) in args else (None if choices else tp),
                       metavar=f.metadata.get("metavar"), help=f.metadata["help"])


def refine_args(args: argparse.Namespace) -> tuple[Optional[str], dict]:
    """(the --refine method or None, {setting: value} of the options given)."""
    given = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("sample.")}
    return given.pop("refine", None), given
