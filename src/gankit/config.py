"""Typed configuration: dataclasses, shipped YAML presets, dotted overrides and validation.

Order of precedence (last wins): dataclass defaults < preset < --config FILE < command-line flags.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from . import safeyaml
from .errors import GankitError

TOY_DATASETS = ("ring", "grid")
NAMED_DATASETS = ("fashion-mnist", "mnist", "cifar10") + TOY_DATASETS
TRANSLATION_MODELS = ("pix2pix", "cyclegan")


@dataclass
class DataConfig:
    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | cifar10 | ring | grid | PATH to an image folder
    data_dir: Optional[str] = None  # where to look for dataset files first (else $GANKIT_DATA, system dirs)
    image_size: Optional[int] = None  # resize to this many pixels; None = the dataset's own size (folders: 64)
    channels: Optional[int] = None  # 1 (grayscale) or 3 (RGB); None = the dataset's own
    limit: Optional[int] = None  # use only the first N examples (quick experiments, tests)
    toy_size: int = 100_000  # number of points drawn once for ring/grid (one epoch)
    download: bool = True  # allow torchvision to download when no local copy is found
    workers: int = 0  # image folders: processes decoding and resizing the images (0 = in this process)


@dataclass
class ModelConfig:
    name: str = "dcgan"  # a pair of G and D from the model registry (gankit.models.MODELS)
    g: Optional[str] = None  # override the generator of the pair
    d: Optional[str] = None  # override the discriminator of the pair
    latent_dim: int = 100  # size of z
    latent_dist: Literal["normal", "uniform"] = "normal"  # z ~ N(0, I) or U(-1, 1)
    g_width: int = 64  # conv nets: channels of G's last hidden layer (doubling towards the seed map)
    d_width: int = 64  # conv nets: channels of D's first layer (doubling with depth)
    g_hidden: list = field(default_factory=lambda: [128, 256, 512, 1024])  # MLP G hidden sizes
    d_hidden: list = field(default_factory=lambda: [512, 256])  # MLP D hidden sizes
    g_batchnorm: bool = True  # BatchNorm in G (MLP: after all but the first hidden layer)
    d_batchnorm: bool = True  # BatchNorm in conv D (turn off for WGAN-GP: the penalty is per sample)
    dropout: float = 0.0  # spatial dropout inside G's random residual blocks
    dropout_at_sampling: bool = True  # keep that dropout active when sampling (noise source)
    attention_hidden: int = 128  # width of the attention D's dense features and gate
    minibatch_std: bool = False  # D: append the batch's feature standard deviation before the output layer
    minibatch_discrimination: int = 0  # D: number of minibatch-discrimination kernels (0 = off; 50 in the paper)
    virtual_batchnorm: bool = False  # G: BatchNorm -> virtual batch norm over a reference batch fixed at start
    virtual_batch_size: int = 64  # size of that reference batch


@dataclass
class LossConfig:
    name: Literal["minimax", "nonsat", "lsgan", "wgan", "wgan-gp", "hinge"] = "nonsat"
    gp_lambda: float = 10.0  # wgan-gp: weight of the gradient penalty
    clip: float = 0.01  # wgan: D weights are clipped to [-clip, clip] after each D step


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate (TTUR: set it apart from lr_g)
    beta1: float = 0.5  # Adam beta1 (0.5 as in DCGAN)
    beta2: float = 0.999  # Adam beta2
    momentum: float = 0.0  # SGD / RMSprop momentum
    n_critic: int = 1  # D steps per G step; 5 for WGAN and WGAN-GP
    impl: Literal["auto", "foreach", "fused", "loop"] = "auto"  # optimizer kernels; auto: fused on CUDA,
    #                                                             foreach (one kernel per step) elsewhere


@dataclass
class TrainConfig:
    epochs: Optional[int] = 5  # stop after this many epochs (None: only --minutes / max_steps)
    minutes: Optional[float] = None  # wall-clock training budget; stops at whichever comes first
    max_steps: Optional[int] = None  # stop after this many steps (a step = one batch: one D update;
    #                                  G is updated every n_critic steps)
    batch_size: int = 64
    seed: int = 0
    out: Optional[str] = None  # run folder; default runs/<preset>-<dataset>-<time>
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    checkpoint_every: int = 500  # steps (batches) between checkpoints; also one at the end and on Ctrl-C
    keep_checkpoints: int = 3  # how many step checkpoints to keep
    log_every: Optional[int] = None  # steps between rows of log.jsonl (None: 1 on CPU, 20 on a GPU, where
    #                                   reading the values is the only host-device synchronisation)
    num_samples: int = 64  # size of the fixed-z sample grid written every epoch
    threads: Optional[int] = None  # torch CPU threads (None: PyTorch's default)
    tensorboard: bool = False  # also log scalars and sample grids to RUN_DIR/tensorboard
    ema_decay: Optional[float] = None  # keep an EMA of G's weights (e.g. 0.999) for sampling and eval
    eval_every: Optional[int] = None  # epochs between evaluations during training (None: never)
    eval_metric: Literal["fid", "kid", "is", "modes"] = "fid"  # ring/grid always use modes
    eval_num: int = 2000  # generated samples per evaluation during training
    eval_features: Literal["auto", "inception", "judge"] = "auto"  # auto: judge for (fashion-)mnist
    amp: Literal["off", "bf16", "fp16"] = "off"  # mixed precision (autocast; fp16 adds gradient scaling)
    compile: bool = False  # torch.compile G and D (D stays eager under double backward: GP, R1, unrolled)
    channels_last: bool = False  # NHWC memory layout for conv models
    sync_batchnorm: bool = False  # torchrun on GPUs: BatchNorm statistics over the whole global batch


@dataclass
class TechConfig:
    label_smoothing: float = 1.0  # one-sided: D's target for real data (0.9 in Salimans et al.); 1.0 = off
    label_flip: float = 0.0  # probability of swapping each of D's real/fake labels
    instance_noise: float = 0.0  # std of Gaussian noise added to every D input at step 0 (annealed)
    instance_noise_steps: int = 5000  # the noise falls linearly to 0 over this many steps
    spectral_norm: bool = False  # spectral normalization of every conv/linear layer of D (Miyato et al.)
    r1_gamma: float = 0.0  # R1 penalty (gamma/2) E||grad D(x_real)||^2; 0 = off
    g_gate: Optional[float] = None  # skip G's update while D's gap mean D(x) - mean D(G(z)) exceeds this
    g_gate_max_skips: int = 5  # ... but for at most this many G updates in a row (a frozen G never catches up)
    pack: int = 1  # PacGAN: D judges `pack` samples at once, concatenated along channels (1 = off)
    feature_matching: Literal["off", "only", "add"] = "off"  # G matches D's mean features on real data
    replay_size: int = 0  # experience replay: a buffer of this many old fakes shown to D again (0 = off)
    replay_ratio: float = 0.5  # share of each fake batch drawn from the replay buffer
    historical_averaging: float = 0.0  # weight of ||theta - mean of past theta||^2 for both networks
    unrolled_steps: int = 0  # unrolled GAN (Metz et al. 2017): G's loss through D after K more D updates
    diffaugment: str = ""  # DiffAugment policy applied to every D input: comma list of translation,cutout,color


@dataclass
class CondConfig:
    mode: Literal["none", "cgan", "acgan", "infogan", "ssgan"] = "none"  # how labels or codes are used
    g: Literal["concat", "cbn"] = "concat"  # cgan/acgan: G gets a class embedding concatenated to z, or
    #                                         conditional BatchNorm (scale and shift per class)
    d: Literal["projection", "concat"] = "projection"  # cgan: D by projection (Miyato & Koyama) or by
    #                                                    one-hot maps concatenated to its input (Mirza & Osindero)
    embed_dim: int = 32  # size of G's class embedding (g=concat)
    aux_weight: float = 1.0  # acgan: weight of the class cross-entropies in both losses
    g_classifier: bool = False  # acgan: dense classifier head on G's last feature map, trained to the class
    cat_codes: list = field(default_factory=lambda: [10])  # infogan: categories of each categorical code
    cont_codes: int = 2  # infogan: continuous codes, U(-1, 1)
    info_weight: float = 1.0  # infogan: weight of the mutual-information loss (lambda)
    labels_per_class: Optional[int] = 100  # ssgan: labelled training examples per class (null: all)
    supervised_only: bool = False  # ssgan baseline: D's classifier on the labelled examples alone, no GAN


@dataclass
class I2IConfig:
    """Image-to-image translation (model.name pix2pix or cyclegan)."""
    l1_lambda: float = 100.0  # pix2pix: weight of || G(A) - B ||_1 beside the adversarial loss
    adversarial: bool = True  # pix2pix: false trains the U-Net with the L1 loss alone (the baseline)
    patch_layers: int = 3  # PatchGAN stride-2 layers: 3 -> 70x70 patches, 2 -> 34x34, 1 -> 16x16
    res_blocks: int = 9  # cyclegan: residual blocks in each generator (9 at 256 px, 6 at 128 px)
    cycle_lambda: float = 10.0  # cyclegan: weight of the cycle-consistency losses
    identity: float = 0.5  # cyclegan: identity loss weight, as a share of cycle_lambda
    pool_size: int = 50  # cyclegan: history of generated images shown to D (0 = off)
    lr_decay: bool = True  # cyclegan: constant lr for the first half of the epochs, then linear to 0
    jitter: bool = True  # random resize-crop jitter and flips of the training images
    norm: Literal["auto", "batch", "instance"] = "auto"  # auto: batch (pix2pix), instance (cyclegan)


@dataclass
class DiagnoseConfig:
    enabled: bool = True  # watch the run and warn in plain words when something goes wrong
    window: int = 200  # logged steps the D-output and gradient checks average over
    d_fake_floor: float = 0.02  # BCE losses: mean D(G(z)) below this over the window -> D overpowers G
    grad_g_floor: float = 1e-5  # G's gradient norm below this over the window -> vanishing gradient
    collapse_ratio: float = 0.3  # fixed-z sample diversity / real diversity below this -> mode collapse
    collapse_modes: float = 0.5  # ring/grid: share of modes captured by fixed-z samples below this -> collapse
    plateau_evals: int = 3  # evaluations without a new best that count as "no progress"
    oscillation_cv: float = 0.25  # G loss std / |mean| over the window above this counts as cycling
    strict: bool = False  # stop at the first warning with exit code 4 (for automation)
    on_divergence: Literal["stop", "rollback"] = "stop"  # rollback: reload the last good checkpoint, halve lrs
    max_rollbacks: int = 3  # give up (and stop) after this many rollbacks


@dataclass
class Config:
    preset: Optional[str] = None  # the preset this config started from (recorded, informational)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    diagnose: DiagnoseConfig = field(default_factory=DiagnoseConfig)
    tech: TechConfig = field(default_factory=TechConfig)
    cond: CondConfig = field(default_factory=CondConfig)
    i2i: I2IConfig = field(default_factory=I2IConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def is_toy(self) -> bool:
        return self.data.dataset in TOY_DATASETS

    @property
    def is_translation(self) -> bool:
        return self.model.name in TRANSLATION_MODELS


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "preset"}
_SECTION_CLASSES = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig,
                    "optim": OptimConfig, "train": TrainConfig, "diagnose": DiagnoseConfig,
                    "tech": TechConfig, "cond": CondConfig, "i2i": I2IConfig}


# ---------------------------------------------------------------- presets
def preset_names() -> list[str]:
    files = resources.files("gankit.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    if name not in preset_names():
        raise GankitError(f"unknown preset '{name}'; available: {', '.join(preset_names())}")
    text = resources.files("gankit.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def default_preset_for(dataset: Optional[str]) -> str:
    """`gankit train` with no --preset: the toy preset for 2-D data, else DCGAN."""
    return "toy" if dataset in TOY_DATASETS else "dcgan"


# ---------------------------------------------------------------- building and validation
def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Check (and lightly coerce) one value against its annotated type; raise a one-line error."""
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_value(key, value, args[0])
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise GankitError(f"bad value {value!r} for '{key}'; allowed: {', '.join(map(str, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise GankitError(f"bad value {value!r} for '{key}'; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GankitError(f"bad value {value!r} for '{key}'; expected a whole number")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads '1e-4' as text
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GankitError(f"bad value {value!r} for '{key}'; expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise GankitError(f"bad value {value!r} for '{key}'; expected text")
        return str(value)
    if tp is list:
        if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
            raise GankitError(f"bad value {value!r} for '{key}'; expected a list of positive whole numbers")
        return list(value)
    return value


def _merge_section(obj: Any, section: str, values: dict) -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        if key not in hints:
            raise GankitError(f"unknown config key '{section}.{key}'; valid keys in '{section}': "
                              f"{', '.join(hints)}")
        setattr(obj, key, _check_value(f"{section}.{key}", value, hints[key]))


def merge(cfg: Config, values: dict) -> Config:
    """Merge a nested dict (from YAML or overrides) into cfg, validating every key and value."""
    if not isinstance(values, dict):
        raise GankitError("a config must be a mapping of sections (data, model, loss, optim, train, diagnose, tech)")
    for section, sub in values.items():
        if section == "preset":
            cfg.preset = sub
            continue
        if section not in _SECTION_CLASSES:
            raise GankitError(f"unknown config section '{section}'; valid: preset, {', '.join(_SECTION_CLASSES)}")
        if not isinstance(sub, dict):
            raise GankitError(f"config section '{section}' must be a mapping of keys to values")
        _merge_section(getattr(cfg, section), section, sub)
    return cfg


MAX_CONFIG_BYTES = 1 << 20


def parse_override(text: str) -> dict:
    """'model.g_width=32' -> {'model': {'g_width': 32}} (the value is parsed as YAML; numbers like
    1e-4, which YAML 1.1 reads as text, become floats when the key expects one)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise GankitError(f"bad override '{text}'; expected SECTION.KEY=VALUE, e.g. optim.lr_g=1e-4")
    key, raw = text.split("=", 1)
    section, name = key.split(".", 1)
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


_INF = float("inf")
# (low, high, ends, keys): every value set (each item of a list) must lie in this interval; ends "[]",
# "[)", "(]" or "()" say which bounds are allowed. The upper bounds keep typos from exhausting memory.
_BOUNDS = [
    (1, 1_000_000, "[]", "train.batch_size train.num_samples model.virtual_batch_size diagnose.window"),
    (2, 1_000_000, "[]", "train.eval_num"),
    (1, 100_000, "[]", "model.latent_dim"),
    (1, 4096, "[]", "model.g_width model.d_width model.g_hidden model.d_hidden model.attention_hidden"),
    (0, 4096, "[]", "model.minibatch_discrimination"),
    (1, 10_000_000, "[]", "data.toy_size"),
    (8, 4096, "[]", "data.image_size"),
    (0, 2**63, "[)", "train.seed"),
    (1, _INF, "[]", ("train.epochs train.max_steps train.checkpoint_every train.keep_checkpoints train.threads "
                     "train.eval_every train.log_every data.limit optim.n_critic tech.pack i2i.patch_layers "
                     "cond.labels_per_class diagnose.plateau_evals")),
    (0, _INF, "[]", ("data.workers tech.instance_noise tech.replay_size tech.historical_averaging "
                     "tech.unrolled_steps i2i.res_blocks i2i.pool_size diagnose.max_rollbacks")),
    (0, _INF, "()", "optim.lr_g optim.lr_d train.minutes"),
    (0, 1, "[)", "optim.beta1 optim.beta2 model.dropout"),
    (0, 1, "()", "train.ema_decay"),
    (0, 1, "(]", "tech.label_smoothing"),
    (0, 0.5, "[)", "tech.label_flip"),
    (0, 1, "[]", "tech.replay_ratio"),
]


def _bound_text(low: float, high: float, ends: str) -> str:
    """'positive', '>= 0 and < 1', ... for an error message."""
    text = "positive" if (low, ends[0]) in ((1, "["), (0, "(")) else f"{'>=' if ends[0] == '[' else '>'} {low}"
    return text if high == _INF else f"{text} and {'<=' if ends[1] == ']' else '<'} {high}"


def _check_bounds(cfg: Config) -> None:
    """Every number finite, and within its range from _BOUNDS."""
    for section in _SECTION_CLASSES:
        for key, v in dataclasses.asdict(getattr(cfg, section)).items():
            if isinstance(v, float) and not math.isfinite(v):
                raise GankitError(f"bad value {v!r} for '{section}.{key}'; it must be a finite number")
    for low, high, ends, keys in _BOUNDS:
        for key in keys.split():
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            for v in value if isinstance(value, list) else [value]:
                ok = v is None or ((v >= low if ends[0] == "[" else v > low)
                                   and (v <= high if ends[1] == "]" else v < high))
                if not ok:
                    raise GankitError(f"bad value {v!r} for '{key}'; it must be {_bound_text(low, high, ends)}")


def _check_training(cfg: Config) -> None:
    t, d, tc = cfg.train, cfg.data, cfg.tech
    if t.epochs is None and t.minutes is None and t.max_steps is None:
        raise GankitError("no stopping rule: set train.epochs, train.minutes or train.max_steps")
    if d.channels not in (None, 1, 3):
        raise GankitError(f"bad value {d.channels!r} for 'data.channels'; allowed: 1, 3 (or null)")
    if (tc.label_smoothing < 1.0 or tc.label_flip > 0) and cfg.loss.name not in ("minimax", "nonsat"):
        raise GankitError(f"label smoothing and flipping need a BCE loss (minimax or nonsat), not "
                          f"'{cfg.loss.name}'; use --loss nonsat or turn them off")
    bad = [p for p in tc.diffaugment.split(",") if p and p not in ("translation", "cutout", "color")]
    if bad:
        raise GankitError(f"unknown DiffAugment policy '{bad[0]}' in tech.diffaugment; allowed: "
                          "translation, cutout, color (comma-separated)")
    if tc.diffaugment and cfg.is_toy:
        raise GankitError("tech.diffaugment works on images; turn it off for ring and grid")
    if t.batch_size % tc.pack:
        raise GankitError(f"tech.pack {tc.pack} must be a positive divisor of the batch size {t.batch_size}")
    m = cfg.model
    if cfg.is_translation and d.dataset in NAMED_DATASETS:
        raise GankitError(f"{m.name} translates images between two domains: give --dataset PATH to "
                          f"{'paired A|B images' if m.name == 'pix2pix' else 'trainA/ and trainB/ folders'} "
                          f"(an offline demo: gankit demo {'edges2fashion' if m.name == 'pix2pix' else 'tops2trousers'} DIR)")


def _check_conditioning(cfg: Config) -> None:
    c, tc = cfg.cond, cfg.tech
    if c.mode == "none":
        return
    if tc.pack > 1 or tc.unrolled_steps or cfg.model.virtual_batchnorm:
        raise GankitError(f"cond.mode={c.mode} does not combine with tech.pack, tech.unrolled_steps or "
                          "model.virtual_batchnorm; turn those off")
    if c.mode == "cgan" and c.d == "concat" and tc.feature_matching != "off":
        raise GankitError("feature matching needs D's features without the label: use cond.d=projection")
    if c.mode == "infogan" and (not all(isinstance(k, int) and k > 1 for k in c.cat_codes) or c.cont_codes < 0
                                or not (c.cat_codes or c.cont_codes)):
        raise GankitError("cond.cat_codes must list category counts > 1 and cond.cont_codes be >= 0, "
                          "with at least one code")
    if c.mode == "ssgan" and cfg.loss.name not in ("minimax", "nonsat"):
        raise GankitError(f"the semi-supervised GAN's K+1 classifier needs a BCE loss (nonsat), not "
                          f"'{cfg.loss.name}'")


def validate(cfg: Config) -> Config:
    """Ranges (_BOUNDS, finite numbers) and the cross-field checks that types alone cannot express."""
    _check_bounds(cfg)
    _check_training(cfg)
    _check_conditioning(cfg)
    return cfg


def build_config(preset: Optional[str] = None, config_file: Optional[str] = None,
                 overrides: Optional[list[dict]] = None) -> Config:
    """Resolve a Config from a preset name, a YAML file and override dicts (in that order)."""
    file_values = load_yaml(config_file) if config_file else {}
    over = overrides or []
    if preset is None:
        preset = file_values.get("preset") if isinstance(file_values, dict) else None
    if preset is None:
        dataset = None
        for values in [file_values, *over]:
            dataset = (values.get("data") or {}).get("dataset", dataset) if isinstance(values, dict) else dataset
        preset = default_preset_for(dataset)
    cfg = merge(Config(), load_preset(preset))
    cfg.preset = preset
    merge(cfg, file_values)
    for values in over:
        merge(cfg, values)
    return validate(cfg)


def config_from_dict(values: dict) -> Config:
    """Rebuild a Config from a saved (resolved) dict, e.g. a run's config.yaml."""
    return validate(merge(Config(), values))


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
