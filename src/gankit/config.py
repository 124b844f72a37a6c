"""Typed configuration: the dataclasses of every section, each field with its default and its help.

A field whose metadata names a `flag` is a `gankit train` option: gankit.cli_train builds the parser from
these fields (train_flags), so each option is declared here and nowhere else. Checking lives in
config_check, presets and YAML files in config_io; all of it is importable from here.
Order of precedence (last wins): dataclass defaults < preset < --config FILE < command-line flags.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Union

from .config_check import (
    ADA_DEFAULT_OPS,
    ADA_OPS,
    NAMED_DATASETS,
    STACKED_DATASETS,
    TOY_DATASETS,
    TRANSLATION_MODELS,
    merge,
    sections,
    validate,
)
from .config_io import default_preset_for, load_preset, load_yaml, parse_override, preset_names, save_config
from .schedules import ScheduledFloat

__all__ = ["Config", "DataConfig", "ModelConfig", "LossConfig", "OptimConfig", "TrainConfig", "TechConfig",
           "CondConfig", "I2IConfig", "DiagnoseConfig", "SampleConfig", "Flag", "train_flags", "build_config",
           "config_from_dict", "merge", "validate", "sections", "load_yaml", "parse_override", "save_config", "preset_names",
           "load_preset", "default_preset_for", "TOY_DATASETS", "NAMED_DATASETS", "STACKED_DATASETS",
           "TRANSLATION_MODELS"]


def opt(default: Any, text: str, flag: str = "", **cli: str) -> Any:
    """A field with its one-line help; a `flag` makes it a `gankit train` option. cli: metavar, group (of
    --help; default by section), exclusive (flags sharing that name exclude each other)."""
    return field(default=default, metadata={"help": text, "flag": flag, **cli})


@dataclass
class DataConfig:
    dataset: str = opt("fashion-mnist", "%(datasets)s, or PATH to an image folder", "--dataset",
                       metavar="NAME|PATH")
    data_dir: Optional[str] = opt(None, "where to look for dataset files first (else $GANKIT_DATA, system dirs)",
                                  "--data-dir")
    image_size: Optional[int] = opt(None, "resize images to this many pixels (default: the dataset's own size; "
                                    "folders: 64)", "--image-size")
    channels: Optional[Literal[1, 3]] = opt(None, "1 (grayscale) or 3 (RGB) (default: the dataset's own)",
                                            "--channels")
    limit: Optional[int] = opt(None, "use only the first N examples (quick experiments, tests)", "--limit",
                               metavar="N")
    holdout: float = 0.0  # share of the training examples set aside, never trained on, to measure D's overfitting
    #                       (0: the dataset's own test split: named datasets, an image folder's test/ subfolder)
    toy_size: int = 100_000  # number of points drawn once for ring/grid (one epoch)
    download: bool = True  # allow torchvision to download when no local copy is found
    workers: int = 0  # image folders: processes decoding and resizing the images (0 = in this process)


@dataclass
class ModelConfig:
    name: str = opt("dcgan", "a (G, D) pair from the model registry: %(models)s; image-to-image: %(i2i)s",
                    "--model", metavar="NAME")
    g: Optional[str] = None  # override the generator of the pair
    d: Optional[str] = None  # override the discriminator of the pair
    latent_dim: int = opt(100, "size of z", "--latent-dim")
    latent_dist: Literal["normal", "uniform"] = opt("normal", "z ~ N(0, I) or U(-1, 1)", "--latent-dist")
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
    r3gan_blocks: int = opt(2, "R3GAN: residual blocks per resolution stage (model r3gan, r3gan-mlp)")
    r3gan_group_size: int = opt(16, "R3GAN: channels per group of each block's grouped 3x3 conv")
    r3gan_expansion: int = opt(2, "R3GAN: inverted-bottleneck expansion (the blocks' inner width / their width)")


@dataclass
class LossConfig:
    name: Literal["minimax", "nonsat", "lsgan", "wgan", "wgan-gp", "hinge", "rpgan"] = opt(
        "nonsat", "the adversarial objective, from the loss registry: %(losses)s", "--loss", metavar="NAME")
    gp_lambda: float = 10.0  # wgan-gp: weight of the gradient penalty
    clip: float = 0.01  # wgan: D weights are clipped to [-clip, clip] after each D step


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "rmsprop", "sgd"] = opt("adam", "optimizer of both networks", "--optimizer")
    lr_g: ScheduledFloat = opt(2e-4, "generator learning rate (or a schedule, see README: Schedules)", "--lr-g")
    lr_d: ScheduledFloat = opt(2e-4, "discriminator learning rate (TTUR: set it apart from lr_g)", "--lr-d")
    beta1: float = opt(0.5, "Adam beta1 (0.5 as in DCGAN)", "--beta1")
    beta2: ScheduledFloat = opt(0.999, "Adam beta2 (or a schedule)", "--beta2")
    momentum: float = 0.0  # SGD / RMSprop momentum
    n_critic: int = opt(1, "D steps per G step; 5 for WGAN and WGAN-GP", "--n-critic")
    impl: Literal["auto", "foreach", "fused", "loop"] = "auto"  # optimizer kernels; auto: fused on CUDA,
    #                                                             foreach (one kernel per step) elsewhere


@dataclass
class TrainConfig:
    epochs: Optional[int] = opt(5, "stop after E epochs (null: only minutes / max_steps); on --resume the "
                                "run's total", "--epochs", metavar="E", exclusive="budget")
    minutes: Optional[float] = opt(None, "wall-clock budget in minutes (the first stopping rule reached stops); "
                                   "on --resume M more minutes", "--minutes", metavar="M", exclusive="budget")
    max_steps: Optional[int] = opt(None, "stop after this many steps (a step = one batch: one D update; G is "
                                   "updated every n_critic steps); on --resume the run's total", "--max-steps")
    batch_size: int = opt(64, "examples per step (under torchrun: the global batch)", "--batch-size")
    seed: int = opt(0, "seed of the weights, data order, latent codes and sample grid", "--seed")
    out: Optional[str] = opt(None, "run folder (default runs/<preset>-<dataset>-<time>)", "--out",
                             metavar="RUN_DIR")
    device: Literal["auto", "cpu", "cuda", "mps"] = opt("auto", "auto: cuda, then mps, then cpu", "--device")
    checkpoint_every: int = opt(500, "steps between checkpoints; also one at the end and on Ctrl-C",
                                "--checkpoint-every")
    keep_checkpoints: int = opt(3, "how many step checkpoints to keep", "--keep-checkpoints")
    clock: Literal["wall", "cpu"] = opt("wall", "what --minutes counts: wall-clock time, or this process's CPU "
                                        "time (fair comparisons on a shared machine; with --threads 1, a minute "
                                        "of one core)", "--clock")
    snapshot_minutes: list[float] = field(default_factory=list)  # also keep checkpoints/minute-M.pt when the run has
    #                                                        trained M minutes (equal-time benchmarks score them)
    log_every: Optional[int] = None  # steps between rows of log.jsonl (None: 1 on CPU, 20 on a GPU, where
    #                                   reading the values is the only host-device synchronisation)
    num_samples: int = 64  # size of the fixed-z sample grid
    sample_every_images: int = 10_000  # write the sample grid and measure D's overfitting every N images shown;
    #                                     older grids are thinned so that at most 100 remain, whatever the run's length
    threads: Optional[int] = opt(None, "CPU threads for PyTorch (default: PyTorch's)", "--threads")
    tensorboard: bool = opt(False, "also log scalars and sample grids to RUN_DIR/tensorboard", "--tensorboard")
    tracker: Optional[Literal["tensorboard", "mlflow", "wandb"]] = opt(
        None, "also log scalars, sample grids, metrics, the config and the final generator to this experiment "
        "tracker (mlflow, wandb: pip install 'gankit[mlflow]' or 'gankit[wandb]')", "--tracker")
    tracker_uri: Optional[str] = opt(None, "mlflow: tracking URI (default $MLFLOW_TRACKING_URI, else a local store "
                                     "in RUN_DIR/mlflow); wandb: server address (default: offline)", "--tracker-uri",
                                     metavar="URI")
    ema_decay: Optional[float] = None  # keep an EMA of G's weights (e.g. 0.999) for sampling and eval
    ema_half_life: Optional[ScheduledFloat] = None  # ... or give its half-life in images shown (a number or a
    #                                                  schedule, as StyleGAN and R3GAN do); overrides ema_decay
    eval_every: Optional[int] = opt(None, "evaluate every N epochs while training (default never); keeps "
                                    "checkpoints/best.pt", "--eval-every", metavar="N")
    eval_metric: Literal["fid", "kid", "is", "modes"] = opt("fid", "metric of those evaluations (ring/grid: "
                                                            "always modes)", "--eval-metric")
    eval_num: int = 2000  # generated samples per evaluation during training
    eval_features: Literal["auto", "inception", "judge"] = "auto"  # auto: judge for (fashion-)mnist
    amp: Literal["off", "bf16", "fp16", "auto"] = opt("off", "mixed precision on CUDA (autocast; fp16 adds gradient "
                                                      "scaling; auto: bf16 on a GPU that has it, else off)", "--amp",
                                                      group="speed")
    compile: bool = opt(False, "torch.compile G and D, after minutes of compiling (D stays eager under double "
                        "backward: GP, R1, unrolled)", "--compile", group="speed")
    channels_last: bool = opt(False, "NHWC memory layout for conv models", "--channels-last", group="speed")
    sync_batchnorm: bool = False  # torchrun on GPUs: BatchNorm statistics over the whole global batch


@dataclass
class TechConfig:
    """Technique switches (`gankit list` shows them with their help and default)."""
    label_smoothing: float = opt(1.0, "one-sided: D's target for real data (0.9 in Salimans et al.); 1.0 = off")
    label_flip: float = opt(0.0, "probability of swapping each of D's real/fake labels")
    instance_noise: float = opt(0.0, "std of Gaussian noise added to every D input at step 0 (annealed)")
    instance_noise_steps: int = opt(5000, "the noise falls linearly to 0 over this many steps")
    spectral_norm: bool = opt(False, "spectral normalization of every conv/linear layer of D (Miyato et al.)")
    r1_gamma: ScheduledFloat = opt(0.0, "R1 penalty (gamma/2) E||grad D(x_real)||^2 (or a schedule); 0 = off")
    r2_gamma: ScheduledFloat = opt(0.0, "R2 penalty (gamma/2) E||grad D(G(z))||^2 on the fakes (R3GAN uses R1 + "
                                   "R2; or a schedule); 0 = off")
    g_gate: Optional[float] = opt(None, "skip G's update while D's gap mean D(x) - mean D(G(z)) exceeds this")
    g_gate_max_skips: int = opt(5, "... but for at most this many G updates in a row (a frozen G never catches up)")
    pack: int = opt(1, "PacGAN: D judges `pack` samples at once, concatenated along channels (1 = off)")
    feature_matching: Literal["off", "only", "add"] = opt("off", "G matches D's mean features on real data")
    replay_size: int = opt(0, "experience replay: a buffer of this many old fakes shown to D again (0 = off)")
    replay_ratio: float = opt(0.5, "share of each fake batch drawn from the replay buffer")
    historical_averaging: float = opt(0.0, "weight of ||theta - mean of past theta||^2 for both networks")
    unrolled_steps: int = opt(0, "unrolled GAN (Metz et al. 2017): G's loss through D after K more D updates")
    diffaugment: str = opt("", "DiffAugment policy applied to every D input: comma list of translation,cutout,color")
    ada_target: Optional[float] = opt(None, "adaptive augmentation (ADA, Karras et al. 2020): p follows r_t = "
                                      "E[sign D(x_train)] towards this target (0.6 in ADA); null = off")
    ada_p: ScheduledFloat = opt(0.0, "ADA's augmentation probability: fixed (or a schedule) when ada_target is "
                                "null (0 = off), else p's starting value")
    ada_interval: int = opt(4, "ADA: adjust p every this many D steps (r_t is measured over them)")
    ada_speed_images: int = opt(100_000, "ADA: p can move from 0 to 1 in this many images (ADA's 500k suits "
                                "runs of tens of millions of images; 100k suits a 10-minute CPU run)")
    ada_ops: str = opt(",".join(ADA_DEFAULT_OPS), "ADA's augmentations, in the order applied: comma list of "
                       + ",".join(ADA_OPS))


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
    labels_per_class: Optional[int] = opt(100, "semi-supervised GAN (--preset ssgan): labelled training "
                                          "examples per class (null: all)", "--labels-per-class", metavar="N")
    supervised_only: bool = False  # ssgan baseline: D's classifier on the labelled examples alone, no GAN
    unsup_weight: float = 0.5  # ssgan: weight of the unsupervised (real/fake) loss beside the labelled
    #                            cross-entropy (0.5 in Salimans et al.'s code)
    d_ema: float = 0.0  # ssgan: decay of an average of D's weights, scored beside the raw D (test_accuracy_ema); 0 = off
    lr_decay: float = 0.0  # ssgan: both learning rates fall linearly to 0 over this last share of the budget
    #                        (1/3 in Salimans et al.: the last 100 of 300 epochs)
    pull_away: float = 0.0  # ssgan, "bad GAN" (Dai et al. 2017): weight of the pull-away term on D's features of
    #                         the fakes in G's loss, the cheap proxy of G's entropy
    low_density: float = 0.0  # ssgan, bad GAN: weight of G's penalty on fakes D calls real, mean relu(log Z(fake))
    consistency: float = 0.0  # ssgan: weight of ||softmax D(aug x) - softmax D(aug' x)||² on the unlabelled batch


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
    collapse_warmup: int = 300  # no mode-collapse check before this step (early grids are noise, not collapse)
    loss_g_ceiling: float = 1e6  # |G loss| above this: D saturated by far too high learning rates
    collapse_modes: float = 0.5  # ring/grid: share of modes captured by fixed-z samples below this -> collapse
    plateau_evals: int = 3  # evaluations without a new best that count as "no progress"
    oscillation_cv: float = 0.25  # G loss std / |mean| over the window above this counts as cycling
    overfit_gap: float = 0.3  # D's accuracy on training images minus that on held-out ones above this -> overfitting
    strict: bool = opt(False, "stop with exit code 4 at the first diagnostic warning (for automation)",
                       "--strict")
    on_divergence: Literal["stop", "rollback"] = "stop"  # rollback: reload the last good checkpoint, halve lrs
    max_rollbacks: int = 3  # give up (and stop) after this many rollbacks


@dataclass
class SampleConfig:
    """How `gankit sample` and `gankit eval` draw from a trained run: discriminator-guided sampling (gankit.refine).
    Not part of what a run trains: editable in a finished run's config.yaml. `sample_flag`: the option of
    `gankit sample` and `gankit eval` that overrides the field."""
    refine: Literal["none", "drs", "mh", "latent"] = opt(
        "none", "discriminator-guided sampling: drs (rejection, Azadi et al.), mh (Metropolis-Hastings, Turner et "
        "al.), latent (Langevin in z, Che et al.) or none (default: the run's sample.refine)", sample_flag="--refine")
    drs_percentile: Optional[float] = opt(95.0, "drs: gamma is this percentile of F over the burn-in samples; off: "
                                          "gamma 0, plain rejection by D's density ratio (default 95)",
                                          sample_flag="--refine-percentile", metavar="P|off")
    drs_burn_in: int = opt(10_000, "drs: samples whose largest D logit starts the bound M (default 10000)",
                           sample_flag="--refine-burn-in", metavar="N")
    mh_chain: int = opt(100, "mh: proposals per kept sample, K (default 100; the paper goes to 640)",
                        sample_flag="--refine-chain", metavar="K")
    mh_calibration: int = opt(5000, "mh: held-out real examples (and as many fakes) D is calibrated on (default 5000)",
                              sample_flag="--refine-calibration", metavar="N")
    latent_steps: int = opt(50, "latent: steps on E(z) = |z|^2/2 - logit D(G(z)) (default 50)",
                            sample_flag="--refine-steps", metavar="N")
    latent_step_size: float = opt(0.01, "latent: eps of z <- z - eps/2 grad E + noise sqrt(eps) n (default 0.01)",
                                  sample_flag="--refine-step-size", metavar="EPS")
    latent_noise: float = opt(1.0, "latent: 1 = Langevin dynamics, 0 = plain gradient descent (default 1)",
                              sample_flag="--refine-noise", metavar="S")


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
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def is_toy(self) -> bool:
        return self.data.dataset in TOY_DATASETS

    @property
    def is_translation(self) -> bool:
        return self.model.name in TRANSLATION_MODELS


# ---------------------------------------------------------------- the command-line view
@dataclass(frozen=True)
class Flag:
    """A `gankit train` option, read from a config field's metadata."""
    key: str  # dotted config key, e.g. optim.lr_g
    flag: str  # e.g. --lr-g
    help: str
    type: type  # int, float or str; bool: a switch that sets True
    choices: tuple  # the values of a Literal type, else ()
    meta: Mapping  # the field's metadata: metavar, group, exclusive


def _plain(tp: Any) -> tuple[type, tuple]:
    """Optional[X] -> X; Literal[a, b] -> (type of a, (a, b)); X -> (X, ())."""
    args = tuple(a for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp)
    if origin is Union:
        return _plain(args[0])
    if tp is ScheduledFloat:  # a flag takes a number; schedules come through --set or a --config file
        return float, ()
    return (type(args[0]), args) if origin is Literal else (tp, ())


def train_flags() -> list[Flag]:
    """Every config field with a command-line flag, section by section."""
    flags = []
    for section, cls in typing.get_type_hints(Config).items():
        if dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
            flags += [Flag(f"{section}.{f.name}", f.metadata["flag"], f.metadata["help"], *_plain(hints[f.name]),
                           f.metadata) for f in dataclasses.fields(cls) if f.metadata.get("flag")]
    return flags


# ---------------------------------------------------------------- building
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
