"""`gankit train` options are generated from the config fields' metadata; its help and `gankit list` name
what the registries hold."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Literal, Union

import pytest

from gankit.cli import build_parser, main
from gankit.cli_train import overrides
from gankit.config import Config, LossConfig, TechConfig, build_config, preset_names, train_flags
from gankit.schedules import ScheduledFloat

README = Path(__file__).resolve().parents[2] / "README.md"
# the command-line contract of scripts outside the repository: flag -> type (bool: a switch)
LEGACY = {"--dataset": str, "--data-dir": str, "--image-size": int, "--channels": int, "--limit": int, "--model": str,
          "--loss": str, "--latent-dim": int, "--latent-dist": str, "--labels-per-class": int, "--optimizer": str,
          "--lr-g": float, "--lr-d": float, "--beta1": float, "--beta2": float, "--n-critic": int, "--epochs": int,
          "--minutes": float, "--max-steps": int, "--batch-size": int, "--seed": int, "--out": str, "--device": str,
          "--checkpoint-every": int, "--keep-checkpoints": int, "--threads": int, "--eval-every": int,
          "--eval-metric": str, "--amp": str, "--tensorboard": bool, "--strict": bool, "--compile": bool,
          "--channels-last": bool, "--tracker": str, "--tracker-uri": str, "--clock": str}


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def options() -> dict[str, argparse.Action]:
    return {s: a for a in train_parser()._actions for s in a.option_strings}


def base_type(tp):
    """Optional[X] -> X; Literal[a, ...] -> type(a); a number-or-schedule field -> float (its flag takes numbers)."""
    if tp is ScheduledFloat:
        return float
    if typing.get_origin(tp) is Union:
        return base_type(next(a for a in typing.get_args(tp) if a is not type(None)))
    return type(typing.get_args(tp)[0]) if typing.get_origin(tp) is Literal else tp


def flagged_fields() -> list[tuple[str, dataclasses.Field, type]]:
    out = []
    for section, cls in typing.get_type_hints(Config).items():
        if dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
            out += [(f"{section}.{f.name}", f, base_type(hints[f.name])) for f in dataclasses.fields(cls)
                    if f.metadata.get("flag")]
    return out


def test_the_flagged_fields_are_the_train_flags():
    assert [key for key, _, _ in flagged_fields()] == [f.key for f in train_flags()]
    assert {f.metadata["flag"] for _, f, _ in flagged_fields()} == set(LEGACY)  # no flag lost, none invented


@pytest.mark.parametrize("key, field, tp", flagged_fields(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_flagged_field_is_a_train_option_of_its_type(key, field, tp):
    action = options()[field.metadata["flag"]]
    assert action.dest == key and action.default is None and field.metadata["help"] in action.help
    if tp is bool:
        assert (action.nargs, action.const) == (0, True)  # a switch that sets True
    else:
        assert action.type is tp is LEGACY[field.metadata["flag"]]


VALUES = {"--dataset": "mnist", "--data-dir": "/d", "--image-size": "32", "--channels": "1", "--limit": "9",
          "--model": "resnet-rrb", "--loss": "hinge", "--latent-dim": "7", "--latent-dist": "uniform",
          "--labels-per-class": "5", "--optimizer": "sgd", "--lr-g": "0.001", "--lr-d": "0.002", "--beta1": "0.1",
          "--beta2": "0.2", "--n-critic": "2", "--epochs": "3", "--max-steps": "50", "--batch-size": "8", "--seed": "4",
          "--out": "o", "--device": "cpu", "--checkpoint-every": "6", "--keep-checkpoints": "2", "--threads": "1",
          "--eval-every": "1", "--eval-metric": "kid", "--amp": "off", "--tracker": "mlflow", "--tracker-uri": "file:/x",
          "--clock": "cpu"}


def test_every_flag_reaches_its_config_key():
    switches = [flag for flag, tp in LEGACY.items() if tp is bool]
    argv = ["train", *[x for pair in VALUES.items() for x in pair], *switches, "--set", "model.g_width=16"]
    args = build_parser().parse_args(argv)
    cfg = build_config(args.preset, args.config, overrides(args)).to_dict()
    given = {**{flag: True for flag in switches}, **VALUES, "--minutes": None}  # --epochs excludes --minutes
    for key, field, tp in flagged_fields():
        section, name = key.split(".")
        value = given[field.metadata["flag"]]
        assert cfg[section][name] == (value if value is None else tp(value)), key
    assert cfg["train"]["minutes"] is None and cfg["model"]["g_width"] == 16  # --epochs replaced the preset's minutes


def test_one_budget_replaces_the_presets_other_budget():
    for argv, gone in ((["train", "--epochs", "2"], "minutes"), (["train", "--minutes", "2"], "epochs")):
        cfg = build_config(None, None, overrides(build_parser().parse_args(argv)))
        assert getattr(cfg.train, gone) is None
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--epochs", "1", "--minutes", "1"])
    assert e.value.code == 2


def train_help(capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping inside names
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_names_the_registries_and_existing_readme_sections(capsys, monkeypatch):
    from gankit.losses import OBJECTIVES
    from gankit.models import MODELS

    text = train_help(capsys, monkeypatch)
    headings = {line.lstrip("#").strip() for line in README.read_text().splitlines() if line.startswith("## ")}
    sections = re.findall(r'README "([^"]+)"', text)
    assert sections and set(sections) <= headings, set(sections) - headings
    assert "Performance" not in text and "%(" not in text
    assert all(name in text for name in [*MODELS.names(), *OBJECTIVES.names(), *preset_names()])


def test_help_says_what_resume_accepts(capsys, monkeypatch):
    from gankit.training.loop import BUDGET_KEYS, MACHINE_KEYS

    text = train_help(capsys, monkeypatch)
    resume = text[text.index("--resume RUN_DIR"):text.index("data:")]
    flags = {f.key.split(".")[1]: f.flag for f in train_flags() if f.key.startswith("train.")}
    assert all(flags[k] in resume for k in BUDGET_KEYS | MACHINE_KEYS if k in flags)
    assert "--threads" in resume and "--device" in resume and "M more minutes" in resume and "totals" in resume


def test_parsing_does_not_load_pytorch():
    code = "import sys; from gankit.cli import build_parser; build_parser().parse_args(['train']); print('torch' in sys.modules)"
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src})
    assert out.stdout.strip() == "False", out.stderr


def test_list_names_every_registered_name_and_the_technique_switches(capsys):
    from gankit.conditioning import MODES
    from gankit.losses import OBJECTIVES
    from gankit.models import DISCRIMINATORS, GENERATORS, MODELS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for names in (MODELS.names(), GENERATORS.names(), DISCRIMINATORS.names(), OBJECTIVES.names(), MODES.names(),
                  preset_names(), ["pix2pix", "cyclegan"]):
        assert all(name in out for name in names), names
    lines = out.splitlines()
    for f in dataclasses.fields(TechConfig):
        assert any(f"{f.name}={json.dumps(f.default)}" in line and f.metadata["help"] in line for line in lines), f.name


def test_the_loss_and_mode_types_match_their_registries():
    from gankit.conditioning import MODES
    from gankit.config import CondConfig
    from gankit.losses import OBJECTIVES

    assert set(typing.get_args(typing.get_type_hints(LossConfig)["name"])) == set(OBJECTIVES.names())
    assert set(typing.get_args(typing.get_type_hints(CondConfig)["mode"])) == set(MODES.names())
