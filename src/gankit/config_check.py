"""Checking a configuration: each value against its annotated type while merging, then ranges and the
cross-field rules that types alone cannot express. Works on any nested dataclass config (gankit.config);
it imports nothing of it, so the dataclasses can import the names below.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import typing
from typing import Any, Literal, Union

from . import schedules
from .errors import GankitError

TOY_DATASETS = ("ring", "grid")
STACKED_DATASETS = ("stacked-fashion-mnist", "stacked-mnist")  # 3 source images as R, G, B (data/stacked.py)
NAMED_DATASETS = ("fashion-mnist", "mnist", "cifar10") + STACKED_DATASETS + TOY_DATASETS
# model.name -> (its networks, what --dataset must give it, the offline demo that writes such a dataset)
TRANSLATION_MODELS = {"pix2pix": ("U-Net G, PatchGAN D", "paired A|B images", "edges2fashion"),
                      "cyclegan": ("2 ResNet Gs, 2 PatchGAN Ds", "trainA/ and trainB/ folders", "tops2trousers")}
PAIRED_LOSSES = ("rpgan",)  # G's loss pairs each fake with a real example's logit
BCE_LOSSES = ("minimax", "nonsat")  # D outputs probabilities: label smoothing, flipping and K+1 classes apply
DIFFAUGMENT_POLICIES = ("translation", "cutout", "color")
# adaptive augmentation (training/augment.py), in the order applied; cutout is opt-in (ADA's "bgc" leaves it out)
ADA_OPS = ("xflip", "rotate90", "translate", "scale", "aniso", "brightness", "contrast", "saturation", "cutout")
ADA_DEFAULT_OPS = ADA_OPS[:-1]
ADA_SIGN_LOSSES = ("minimax", "nonsat", "hinge", "lsgan")  # D's output sign says real or fake: r_t means something
FEATURE_MATCHING_ON = ("only", "add")
URI_TRACKERS = ("mlflow", "wandb")  # train.tracker values that take train.tracker_uri
LABEL_IN_D_INPUT = ("concat",)  # cond.d values whose D sees the label in its input (no label-free features)


# ---------------------------------------------------------------- types, while merging
def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Check (and lightly coerce) one value against its annotated type; raise a one-line error."""
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _check_value(key, value, args[0])
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) or value not in choices:
            raise GankitError(f"bad value {value!r} for '{key}'; allowed: {', '.join(map(str, choices))}")
        return value
    check = _SCALARS.get(tp)
    return check(key, value) if check else value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise GankitError(f"bad value {value!r} for '{key}'; expected true or false")
    return value


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GankitError(f"bad value {value!r} for '{key}'; expected a whole number")
    return value


def _float(key: str, value: Any) -> float:
    if isinstance(value, str):  # YAML 1.1 reads '1e-4' as text
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GankitError(f"bad value {value!r} for '{key}'; expected a number")
    return float(value)


def _str(key: str, value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise GankitError(f"bad value {value!r} for '{key}'; expected text")
    return str(value)


def _list(key: str, value: Any) -> list:
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        raise GankitError(f"bad value {value!r} for '{key}'; expected a list of positive whole numbers")
    return list(value)


def _float_list(key: str, value: Any) -> list:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise GankitError(f"bad value {value!r} for '{key}'; expected a list of numbers")
    return [float(v) for v in value]


_SCALARS = {bool: _bool, int: _int, float: _float, str: _str, list: _list, list[float]: _float_list,
            schedules.ScheduledFloat: schedules.check}


def _merge_section(obj: Any, section: str, values: dict) -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        if key not in hints:
            raise GankitError(f"unknown config key '{section}.{key}'; valid keys in '{section}': "
                              f"{', '.join(hints)}")
        setattr(obj, key, _check_value(f"{section}.{key}", value, hints[key]))


def merge(cfg: Any, values: dict) -> Any:
    """Merge a nested dict (from YAML or overrides) into cfg, validating every key and value."""
    hints = typing.get_type_hints(type(cfg))
    if not isinstance(values, dict):
        raise GankitError(f"a config must be a mapping of sections ({', '.join(sections(cfg))})")
    for section, sub in values.items():
        if section not in hints:
            raise GankitError(f"unknown config section '{section}'; valid: {', '.join(hints)}")
        if not dataclasses.is_dataclass(getattr(cfg, section)):  # a top-level value: preset
            setattr(cfg, section, _check_value(section, sub, hints[section]))
        elif not isinstance(sub, dict):
            raise GankitError(f"config section '{section}' must be a mapping of keys to values")
        else:
            _merge_section(getattr(cfg, section), section, sub)
    return cfg


def sections(cfg: Any) -> list[str]:
    """The names of cfg's sections (its dataclass-valued fields)."""
    return [f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))]


# ---------------------------------------------------------------- ranges
_INF = float("inf")
# (low, high, ends, keys): every value set (each item of a list) must lie in this interval; ends "[]",
# "[)", "(]" or "()" say which bounds are allowed. The upper bounds keep typos from exhausting memory.
_BOUNDS = [
    (0, 100, "[]", "sample.drs_percentile"),  # discriminator-guided sampling (gankit.refine)
    (1, 10_000_000, "[]", "sample.drs_burn_in"),
    (1, 100_000, "[]", "sample.mh_chain sample.latent_steps"),
    (2, 100_000, "[]", "sample.mh_calibration"),
    (0, _INF, "()", "sample.latent_step_size"),
    (0, _INF, "[]", "sample.latent_noise"),
    (1, 1_000_000, "[]", "train.batch_size train.num_samples model.virtual_batch_size diagnose.window"),
    (2, 1_000_000, "[]", "train.eval_num"),
    (1, 100_000, "[]", "model.latent_dim"),
    (1, 4096, "[]", "model.g_width model.d_width model.g_hidden model.d_hidden model.attention_hidden"),
    (0, 4096, "[]", "model.minibatch_discrimination"),
    (1, 10_000_000, "[]", "data.toy_size"),
    (8, 4096, "[]", "data.image_size"),
    (0, 2**63, "[)", "train.seed"),
    (1, _INF, "[]", ("train.epochs train.max_steps train.checkpoint_every train.keep_checkpoints train.threads "
                     "train.eval_every train.log_every train.sample_every_images data.limit optim.n_critic tech.pack "
                     "i2i.patch_layers "
                     "cond.labels_per_class diagnose.plateau_evals tech.ada_interval tech.ada_speed_images")),
    (0, _INF, "[]", ("data.workers tech.r1_gamma tech.r2_gamma train.ema_half_life tech.instance_noise tech.replay_size "
                     "tech.historical_averaging "
                     "tech.unrolled_steps i2i.res_blocks i2i.pool_size diagnose.max_rollbacks "
                     "cond.unsup_weight cond.pull_away cond.low_density cond.consistency")),
    (0, _INF, "()", "optim.lr_g optim.lr_d train.minutes train.snapshot_minutes"),
    (0, 1, "[)", "optim.beta1 optim.beta2 model.dropout tech.ada_p cond.d_ema"),
    (0, 1, "()", "train.ema_decay tech.ada_target"),
    (0, 1, "(]", "tech.label_smoothing"),
    (0, 0.5, "[)", "tech.label_flip"),
    (0, 1, "[]", "tech.replay_ratio cond.lr_decay"),
    (0, 0.5, "[]", "data.holdout"),
    (0, 1, "(]", "diagnose.overfit_gap"),
]
_ENDS = {"[": operator.ge, "(": operator.gt, "]": operator.le, ")": operator.lt}
_SIGNS = {operator.ge: ">=", operator.gt: ">", operator.le: "<=", operator.lt: "<"}


def _bound_text(low: float, high: float, lo, hi) -> str:
    """'positive', '>= 0 and < 1', ... for an error message."""
    text = "positive" if (low, lo) in ((1, operator.ge), (0, operator.gt)) else f"{_SIGNS[lo]} {low}"
    return text if high == _INF else f"{text} and {_SIGNS[hi]} {high}"


def _check_bounds(cfg: Any) -> None:
    """Every number finite, and within its range from _BOUNDS."""
    for section in sections(cfg):
        for key, v in dataclasses.asdict(getattr(cfg, section)).items():
            if any(isinstance(x, float) and not math.isfinite(x) for x in schedules.endpoints(v)):
                raise GankitError(f"bad value {v!r} for '{section}.{key}'; it must be a finite number")
    for low, high, ends, keys in _BOUNDS:
        lo, hi = _ENDS[ends[0]], _ENDS[ends[1]]
        for key in keys.split():
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            # a schedule starts within the range and may end on its low bound (a learning rate decayed to 0)
            pairs = [(v, lo) for v in value] if isinstance(value, list) else [
                (v, lo if i == 0 or not schedules.is_scheduled(value) else operator.ge)
                for i, v in enumerate(schedules.endpoints(value))]
            for v, low_ok in pairs:
                if v is not None and not (low_ok(v, low) and hi(v, high)):
                    raise GankitError(f"bad value {v!r} for '{key}'; it must be {_bound_text(low, high, lo, hi)}")


# ---------------------------------------------------------------- rules across fields
def _check_training(cfg: Any) -> None:
    t, d, tc = cfg.train, cfg.data, cfg.tech
    if t.epochs is None and t.minutes is None and t.max_steps is None:
        raise GankitError("no stopping rule: set train.epochs, train.minutes or train.max_steps")
    late = [m for m in t.snapshot_minutes if t.minutes is not None and m >= t.minutes]
    if late:
        raise GankitError(f"train.snapshot_minutes {late[0]:g} is not before train.minutes {t.minutes:g}, so that "
                          "snapshot would never be kept; give minutes below the budget (the run's end is its last "
                          "checkpoint anyway)")
    if (tc.label_smoothing < 1.0 or tc.label_flip > 0) and cfg.loss.name not in BCE_LOSSES:
        raise GankitError(f"label smoothing and flipping need a BCE loss ({' or '.join(BCE_LOSSES)}), not "
                          f"'{cfg.loss.name}'; use --loss nonsat or turn them off")
    bad = [p for p in tc.diffaugment.split(",") if p and p not in DIFFAUGMENT_POLICIES]
    if bad:
        raise GankitError(f"unknown DiffAugment policy '{bad[0]}' in tech.diffaugment; allowed: "
                          f"{', '.join(DIFFAUGMENT_POLICIES)} (comma-separated)")
    if tc.diffaugment and cfg.is_toy:
        raise GankitError("tech.diffaugment works on images; turn it off for ring and grid")
    if tc.unrolled_steps and cfg.loss.name in PAIRED_LOSSES:
        raise GankitError(f"tech.unrolled_steps does not combine with the paired loss '{cfg.loss.name}' yet; "
                          "turn one of them off")
    if t.batch_size % tc.pack:
        raise GankitError(f"tech.pack {tc.pack} must be a positive divisor of the batch size {t.batch_size}")
    if cfg.is_translation and d.dataset in NAMED_DATASETS:
        _, wants, demo = TRANSLATION_MODELS[cfg.model.name]
        raise GankitError(f"{cfg.model.name} translates images between two domains: give --dataset PATH to "
                          f"{wants} (an offline demo: gankit demo {demo} DIR)")


def _whole_batches(cfg: Any) -> None:
    if cfg.tech.pack > 1 or cfg.tech.unrolled_steps or cfg.model.virtual_batchnorm:
        raise GankitError(f"cond.mode={cfg.cond.mode} does not combine with tech.pack, tech.unrolled_steps or "
                          "model.virtual_batchnorm; turn those off")


def _label_free_features(cfg: Any) -> None:
    if cfg.cond.d in LABEL_IN_D_INPUT and cfg.tech.feature_matching in FEATURE_MATCHING_ON:
        raise GankitError("feature matching needs D's features without the label: use cond.d=projection")


def _info_codes(cfg: Any) -> None:
    c = cfg.cond
    if not all(isinstance(k, int) and k > 1 for k in c.cat_codes) or c.cont_codes < 0 or not (c.cat_codes or c.cont_codes):
        raise GankitError("cond.cat_codes must list category counts > 1 and cond.cont_codes be >= 0, "
                          "with at least one code")


def _bce_classifier(cfg: Any) -> None:
    if cfg.loss.name not in BCE_LOSSES:
        raise GankitError(f"the semi-supervised GAN's K+1 classifier needs a BCE loss (nonsat), not "
                          f"'{cfg.loss.name}'")


def _switches_off(keys: tuple, where: str, when=lambda c: True):
    """A check that cond.KEY is off (0 or false) for each of `keys` when when(cfg.cond): it would do nothing."""
    def check(cfg: Any) -> None:
        on = [k for k in keys if getattr(cfg.cond, k)] if when(cfg.cond) else []
        if on:
            raise GankitError(f"cond.{on[0]} would do nothing here: it acts in the semi-supervised GAN ({where}); "
                              "remove it")
    return check


_NOT_SSGAN = _switches_off(("supervised_only", "d_ema", "lr_decay", "pull_away", "low_density", "consistency"),
                           "cond.mode=ssgan")
_NOT_BASELINE = _switches_off(("pull_away", "low_density", "consistency"), "without cond.supervised_only",
                              lambda c: c.supervised_only)  # terms of the GAN's losses, not of its baseline


# cond.mode -> its checks (a mode not listed gets the first: any labelled mode needs whole batches)
_COND_CHECKS = {"none": (_NOT_SSGAN,), "cgan": (_whole_batches, _label_free_features, _NOT_SSGAN),
                "acgan": (_whole_batches, _NOT_SSGAN), "infogan": (_whole_batches, _info_codes, _NOT_SSGAN),
                "ssgan": (_whole_batches, _bce_classifier, _NOT_BASELINE)}


def _check_ada(cfg: Any) -> None:
    """Adaptive augmentation: known ops, images, a D to augment for, and no ADA setting that would do nothing."""
    tc, default = cfg.tech, type(cfg.tech)()
    ops = [o for o in tc.ada_ops.split(",") if o]
    bad = [o for o in ops if o not in ADA_OPS]
    if bad or not ops:
        raise GankitError(f"{f'unknown op {bad[0]!r} in tech.ada_ops' if bad else 'tech.ada_ops is empty'}; allowed: "
                          f"{','.join(ADA_OPS)} (comma-separated)")
    twice = sorted({o for o in ops if ops.count(o) > 1})
    if twice:
        raise GankitError(f"tech.ada_ops names {twice[0]} twice (each op is applied once, with probability "
                          "tech.ada_p); name it once")
    unused = ("ada_interval", "ada_speed_images", "ada_ops") if tc.ada_target is None and not tc.ada_p else \
        ("ada_speed_images",) if tc.ada_target is None else ()
    idle = [f"tech.{k}" for k in unused if getattr(tc, k) != getattr(default, k)]
    if idle:
        raise GankitError(f"{', '.join(idle)} would do nothing without tech.ada_target (the controller of p)"
                          f"{'' if tc.ada_p else ' or tech.ada_p (a fixed p)'}; set tech.ada_target=0.6 or remove them")
    if tc.ada_target is None and not tc.ada_p:
        return
    if tc.ada_target is not None and schedules.is_scheduled(tc.ada_p):
        raise GankitError("tech.ada_p is a schedule, but tech.ada_target moves p itself; give ada_p a number (p's "
                          "start) or remove tech.ada_target")
    if cfg.is_toy or (cfg.is_translation and not cfg.i2i.adversarial) or cfg.cond.supervised_only:
        raise GankitError("adaptive augmentation augments the images a discriminator sees; this run has none (2-D "
                          "points, i2i.adversarial=false or cond.supervised_only): remove tech.ada_target and tech.ada_p")
    if tc.ada_target is not None and not cfg.is_translation and cfg.loss.name not in ADA_SIGN_LOSSES:
        raise GankitError(f"tech.ada_target reads the sign of D's outputs as real or fake, which means nothing for the "
                          f"loss '{cfg.loss.name}' (only {', '.join(ADA_SIGN_LOSSES)}); use a fixed tech.ada_p instead")


def _check_tracker(cfg: Any) -> None:
    t = cfg.train
    if t.tracker_uri and t.tracker not in URI_TRACKERS:
        raise GankitError(f"train.tracker_uri is for the trackers {', '.join(URI_TRACKERS)}; add --tracker mlflow "
                          "(or wandb), or drop --tracker-uri")


def validate(cfg: Any) -> Any:
    """Ranges (_BOUNDS, finite numbers) and the cross-field checks that types alone cannot express."""
    _check_bounds(cfg)
    _check_training(cfg)
    _check_ada(cfg)
    _check_tracker(cfg)
    for check in _COND_CHECKS.get(cfg.cond.mode, (_whole_batches,)):
        check(cfg)
    return cfg
