"""`gankit train` and `gankit list`.

The train options are generated from the config fields that name a flag (gankit.config.train_flags); the
names in their help texts (%(models)s, %(losses)s, ...) come from the registries, read only when help is
shown, so parsing a command line does not load PyTorch. What may change on --resume is decided by
gankit.training.loop.resume alone: every option given is passed to it.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys

from .config import Flag, parse_override, train_flags
from .errors import GankitError

# section -> its group in `gankit train --help` (a field's metadata may name another group)
SECTION_GROUPS = {"data": "data", "model": "model and loss", "loss": "model and loss", "cond": "model and loss",
                  "optim": "optimisation", "train": "run", "diagnose": "run"}
GROUPS = {"data": None, "model and loss": None, "optimisation": None, "run": None,  # title -> description
          "speed": 'see README "Speed, mixed precision and several GPUs"; several GPUs: '
                   'torchrun --nproc_per_node K -m gankit train ...'}
DESCRIPTION = ("Train a GAN. With no options: DCGAN on Fashion-MNIST for 10 minutes. Later options override "
               "earlier sources: preset < --config < flags < --set. Each flag sets the config key in brackets; "
               '--set reaches every key (README "Command line"; technique switches: gankit list, README '
               '"Techniques").')
RESUME_HELP = ("continue the run saved in RUN_DIR exactly. Only the budget (%(budget_flags)s) and machine-only "
               "options (%(machine_flags)s) may differ from the run's config; any other option that changes it is "
               "refused. On resume --epochs and --max-steps are the run's totals and --minutes M means M more "
               'minutes (README "Interrupting and resuming")')
# stop reason -> (exit code, what to print on stderr); any other reason: done, exit code 0
STOPS = {
    "diverged": (3, "gankit: error: training diverged at step {steps} (a loss or weight became NaN or infinite); "
                    "no checkpoint of that state was saved. Lower --lr-g/--lr-d and start again, or resume from "
                    "the last good checkpoint with gankit train --resume {run}"),
    "strict": (4, "gankit: error: stopped at step {steps} by a diagnostic warning (--strict); see "
                  "{run}/diagnostics.jsonl. Continue with gankit train --resume {run}"),
    "interrupt": (130, "interrupted at step {steps}; checkpoint saved. Continue with: gankit train --resume {run}"),
}


@functools.cache
def registry_names() -> dict[str, list[str]]:
    """Every name a user can pick, by kind, from the registries (this imports PyTorch)."""
    from .conditioning import MODES
    from .config import NAMED_DATASETS, TRANSLATION_MODELS, preset_names
    from .losses import OBJECTIVES
    from .metrics.evaluate import ALL_METRICS
    from .models import DISCRIMINATORS, GENERATORS, MODELS
    from .training.loop import BUDGET_KEYS, MACHINE_KEYS

    budget, machine = ({f"train.{k}" for k in keys} for keys in (BUDGET_KEYS, MACHINE_KEYS))
    return {"presets": preset_names(), "models": MODELS.names(), "generators": GENERATORS.names(),
            "discriminators": DISCRIMINATORS.names(), "i2i": list(TRANSLATION_MODELS), "losses": OBJECTIVES.names(),
            "modes": MODES.names(), "metrics": list(ALL_METRICS), "datasets": list(NAMED_DATASETS),
            "budget_flags": [f.flag for f in train_flags() if f.key in budget],
            "machine_flags": [f.flag for f in train_flags() if f.key in machine]}


def _names_of(match: re.Match) -> str:
    names = registry_names()
    return ", ".join(names[match[1]]) if match[1] in names else match[0]


class RegistryHelp(argparse.HelpFormatter):
    """Expands %(models)s, %(losses)s, ... (registry_names) in help texts when help is shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return re.sub(r"%\((\w+)\)s", _names_of, super()._get_help_string(action) or "")


def _argument(f: Flag) -> dict:
    """add_argument's keywords for a flag: a switch for a bool, else its type; choices show in the metavar."""
    if f.type is bool:
        return {"action": "store_const", "const": True}
    metavar = f.meta.get("metavar") or "|".join(map(str, f.choices)) or f.flag[2:].upper().replace("-", "_")
    return {"type": f.type, "metavar": metavar}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a GAN", description=DESCRIPTION, formatter_class=RegistryHelp)
    p.add_argument("--preset", help="a shipped preset: %(presets)s (default, by measurement: dcgan-tuned on "
                   "fashion-mnist, dcgan-stacked on stacked-fashion-mnist, toy on ring and grid, else dcgan)")
    p.add_argument("--config", metavar="FILE.yaml", help="a YAML file of config sections")
    p.add_argument("--resume", metavar="RUN_DIR", help=RESUME_HELP)
    groups = {title: p.add_argument_group(title, description) for title, description in GROUPS.items()}
    exclusive: dict = {}
    for f in train_flags():
        group = groups[f.meta.get("group") or SECTION_GROUPS[f.key.partition(".")[0]]]
        if f.meta.get("exclusive"):  # created once, in the group of its first flag
            group = exclusive[f.meta["exclusive"]] = exclusive.get(f.meta["exclusive"]) or group.add_mutually_exclusive_group()
        group.add_argument(f.flag, dest=f.key, help=f"{f.help} [{f.key}]", **_argument(f))
    groups["run"].add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                               help="set any config key, e.g. --set model.g_width=32 (repeatable)")
    groups["run"].add_argument("--quiet", action="store_true", help="no progress output")


def overrides(args: argparse.Namespace) -> list[dict]:
    """The config values given on the command line: the flags' (a budget given replaces the preset's other
    budgets: flags of one `exclusive` set), then each --set."""
    flags = train_flags()
    given = [f for f in flags if getattr(args, f.key) is not None]
    values: dict = {}
    for f in given:
        section, _, name = f.key.partition(".")
        values.setdefault(section, {})[name] = getattr(args, f.key)
    for f in given:
        for rival in flags:
            if f.meta.get("exclusive") and rival.meta.get("exclusive") == f.meta["exclusive"]:
                section, _, name = rival.key.partition(".")
                values[section].setdefault(name, None)
    return [values] + [parse_override(s) for s in args.set]


def _combined(over: list[dict]) -> dict:
    """Override dicts in order -> one {section: {key: value}} (later ones win)."""
    out: dict = {}
    for values in over:
        for section, sub in values.items():
            out.setdefault(section, {}).update(sub)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .config import build_config
    from .observe.trackers import check_trackers
    from .training import resume, train

    over = overrides(args)
    if args.resume is None:
        cfg = build_config(args.preset, args.config, over)
        check_trackers(cfg)  # a missing tracker package is refused before the run folder is made
        return report(train(cfg, quiet=args.quiet))
    if args.preset is not None or args.config is not None:
        raise GankitError("--preset and --config cannot be combined with --resume: a run keeps its config.yaml; "
                          "give only the options to change (budget, machine)")
    return report(resume(args.resume, _combined(over), quiet=args.quiet))


def report(summary: dict) -> int:
    """How training ended, on the console (rank 0 speaks for all processes under torchrun); the exit code.
    Training named the run folder when it started ("run folder: ..." on stderr, unless --quiet)."""
    code, message = STOPS.get(summary["stopped_by"], (0, ""))
    if int(os.environ.get("RANK", "0")) > 0:
        return code
    run = summary["run"]
    if message:
        print(message.format(**summary), file=sys.stderr)
        return code
    print(f"done: {summary['steps']} steps, {summary['epochs']} epochs, {summary['seconds']} s "
          f"(stopped by {summary['stopped_by']})")
    print(f"run folder: {run}\n  samples: {run}/samples/   curves: {run}/losses.png {run}/d_outputs.png   "
          f"log: {run}/log.jsonl")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .config import TRANSLATION_MODELS, TechConfig
    from .models import MODELS

    names = registry_names()
    rows = {"presets": names["presets"],
            "models": [f"{m} (G={MODELS.get(m)[0]}, D={MODELS.get(m)[1]})" for m in names["models"]],
            "generators": names["generators"], "discriminators": names["discriminators"],
            "image-to-image": [f"{m} ({nets})" for m, (nets, _, _) in TRANSLATION_MODELS.items()],
            "losses": names["losses"], "cond.mode": names["modes"], "metrics": names["metrics"],
            "datasets": names["datasets"] + ["or a folder of images"]}
    for label, items in rows.items():
        print(f"{label + ':':<16}" + ", ".join(items))
    print("techniques:     --set tech.KEY=VALUE (default shown)")
    fields = dataclasses.fields(TechConfig)
    width = max(len(f"{f.name}={json.dumps(f.default)}") for f in fields)
    for f in fields:
        print(f"  {f'{f.name}={json.dumps(f.default)}':<{width}}  {f.metadata['help']}")
    return 0
