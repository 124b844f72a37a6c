"""Everything a run needs before its first step: device, data, models, optimizers, run folder."""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config import Config, OptimConfig, save_config
from ..data import Data, load_dataset
from ..errors import GankitError
from ..losses import OBJECTIVES, Objective
from ..models import build_models
from .checkpoint import list_step_checkpoints
from ..losses.adversarial import bce_d_targets
from .ema import make_ema
from ..conditioning import NONE, Conditioning
from .dist import SINGLE, Dist
from .precision import Precision
from .steps import Extras
from .techniques import HistoricalAverage, ReplayBuffer, apply_spectral_norm, make_view, packed_shape
from .steps import sample_z


def pick_device(name: str, d: Dist = SINGLE) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. An unavailable explicit choice is an error.
    Under torchrun each process takes the GPU of its LOCAL_RANK."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", d.local_rank) if d.active else torch.device("cuda")
    if name == "auto":
        return torch.device("mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise GankitError("device 'mps' requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(params, cfg: OptimConfig, lr: float, device: torch.device = torch.device("cpu")
                   ) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD; optim.impl picks the kernels: fused (Adam on CUDA), foreach (one multi-tensor
    kernel per step) or a loop over parameters."""
    impl = cfg.impl
    if impl == "auto":
        impl = "fused" if device.type == "cuda" and cfg.optimizer == "adam" else "foreach"
    kernels = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[impl]
    if impl == "fused" and cfg.optimizer != "adam":
        raise GankitError("optim.impl=fused is offered for Adam only; use foreach")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), **kernels)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, **kernels)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, **kernels)


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch, a pure function of (seed, epoch): resume replays it exactly."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def default_run_dir(cfg: Config) -> Path:
    dataset = Path(cfg.data.dataset).name if not cfg.data.dataset.isidentifier() else cfg.data.dataset
    return Path("runs") / f"{cfg.preset or 'custom'}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def free_run_dir(cfg: Config, out: Optional[str]) -> Path:
    """The folder a new run will use; refuse one that already holds a run."""
    run = Path(out) if out else default_run_dir(cfg)
    if list_step_checkpoints(run) or (run / "log.jsonl").exists():
        raise GankitError(f"'{run}' already holds a run; continue it with `gankit train --resume {run}` "
                          "or choose another --out")
    return run


def create_run_dir(cfg: Config, run: Path) -> Path:
    """Create the run folder and write config.yaml before anything else."""
    (run / "samples").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    save_config(cfg, run / "config.yaml")
    return run


@dataclass
class Setup:
    """The objects of one run. The loop reads them; nothing here knows the order of training."""
    cfg: Config
    device: torch.device
    data: Data
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    objective: Objective
    fixed_z: torch.Tensor
    G_ema: Optional[nn.Module] = None  # moving average of G's weights, when train.ema_decay is set
    lr_scale: float = 1.0  # halved at each rollback after a divergence
    g_skipped: int = 0  # G updates skipped by the generator-update gate (tech.g_gate)
    replay: Optional[nn.Module] = None  # experience replay buffer (tech.replay_size)
    ha_g: Optional[nn.Module] = None  # historical averages (tech.historical_averaging)
    ha_d: Optional[nn.Module] = None
    dist: Dist = SINGLE  # this process's place among torchrun's processes
    G_train: Optional[nn.Module] = None  # what the steps call: G (and D) wrapped in DDP and/or compiled
    D_train: Optional[nn.Module] = None
    z_gen: Optional[torch.Generator] = None  # latent codes of the global batch (shared by all processes)
    prec: Precision = dataclasses.field(default_factory=Precision)
    log_every: int = 1
    cond: Conditioning = NONE  # labels or InfoGAN codes
    fixed_y: Optional[torch.Tensor] = None  # classes / codes of the per-epoch grid (one class per row)
    grid_cols: int = 0  # images per grid row for conditional grids (0: a square grid)
    labelled: Optional[torch.Tensor] = None  # ssgan: indices of the labelled training examples

    @property
    def num_classes(self) -> int:
        return self.cond.K

    def batch_y(self) -> Optional[torch.Tensor]:
        """This process's share of the classes (or codes) drawn for the global batch's fakes."""
        y = self.cond.sample(self.cfg.train.batch_size, self.z_gen, self.device)
        if y is None:
            return None
        b = self.local_batch
        return y[self.dist.rank * b:(self.dist.rank + 1) * b]

    def real_y(self, idx: torch.Tensor) -> Optional[torch.Tensor]:
        """Classes of the real examples at idx, when the conditioning uses them."""
        if self.cond.mode in ("cgan", "acgan"):
            return self.data.labels[idx.to(self.data.labels.device)].to(self.device)
        return None

    def labelled_batch(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """ssgan: a batch drawn from the labelled examples (images in [-1, 1], classes)."""
        if self.labelled is None:
            return None
        pick = torch.randint(len(self.labelled), (self.local_batch,), generator=self.z_gen, device=self.device)
        idx = self.labelled[pick.to(self.labelled.device)]
        return self.data.batch(idx), self.data.labels[idx.to(self.data.labels.device)].to(self.device)

    @property
    def local_batch(self) -> int:
        return self.cfg.train.batch_size // self.dist.world

    def batch_z(self) -> torch.Tensor:
        """This process's share of the global batch's latent codes: the same codes as one process would draw."""
        m, B, b = self.cfg.model, self.cfg.train.batch_size, self.local_batch
        z = sample_z(B, m.latent_dim, m.latent_dist, self.device, generator=self.z_gen)
        return z[self.dist.rank * b:(self.dist.rank + 1) * b]

    def extras(self, step: int) -> Extras:
        """The techniques acting inside the D and G steps at this step."""
        tc = self.cfg.tech
        return Extras(make_view(tc, step), tc.r1_gamma, self.replay, self.ha_d, self.ha_g,
                      tc.historical_averaging, tc.feature_matching, tc.unrolled_steps, self.opt_d, self.prec,
                      self.cond)

    def technique_state(self) -> dict:
        """Tensors the techniques keep, saved in checkpoints for exact resume."""
        return {k: m.state_dict() for k, m in (("replay", self.replay), ("ha_g", self.ha_g), ("ha_d", self.ha_d))
                if m is not None}

    def load_technique_state(self, state: dict) -> None:
        for k, m in (("replay", self.replay), ("ha_g", self.ha_g), ("ha_d", self.ha_d)):
            if m is not None and k in state:
                m.load_state_dict(state[k])

    @property
    def G_sample(self) -> nn.Module:
        """The generator to sample and evaluate with: the EMA copy when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.cfg.train.batch_size


def wrap_for_training(G: nn.Module, D: nn.Module, cfg: Config, device: torch.device, d: Dist
                      ) -> tuple[nn.Module, nn.Module]:
    """The modules the steps call: SyncBatchNorm and DDP under torchrun, then torch.compile if asked.
    The plain modules stay the ones saved, sampled and averaged."""
    t = cfg.train
    G_train, D_train = G, D
    if d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if t.sync_batchnorm:
            if device.type != "cuda":
                raise GankitError("train.sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm); turn it off on CPU")
            G_train = nn.SyncBatchNorm.convert_sync_batchnorm(G_train)
            D_train = nn.SyncBatchNorm.convert_sync_batchnorm(D_train)
        ids = [device.index] if device.type == "cuda" else None
        G_train, D_train = DDP(G_train, device_ids=ids), DDP(D_train, device_ids=ids)
    if t.compile:
        G_train = torch.compile(G_train)
        double_backward = cfg.loss.name == "wgan-gp" or cfg.tech.r1_gamma > 0 or cfg.tech.unrolled_steps > 0
        if not double_backward:  # torch.compile does not follow double backward
            D_train = torch.compile(D_train)
    return G_train, D_train


def build(cfg: Config, d: Dist = SINGLE) -> Setup:
    """Seed, load the data, build models and optimizers (deterministic given cfg.train.seed)."""
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    if t.batch_size % d.world:
        raise GankitError(f"the batch size {t.batch_size} must divide evenly over the {d.world} processes; "
                          f"use a multiple of {d.world}")
    device = pick_device(t.device, d)
    if t.amp != "off" and device.type != "cuda":
        raise GankitError(f"train.amp={t.amp} needs a CUDA GPU (on this {device.type} it would be slower than "
                          "float32); use --amp off")
    data = load_dataset(cfg.data, seed=t.seed)
    if len(data) < t.batch_size:
        raise GankitError(f"the dataset has {len(data)} examples, fewer than the batch size {t.batch_size}; "
                          "lower --batch-size or add data")
    data = data.to(device)  # small datasets live on the device as uint8: no per-step host copies
    K = int(data.labels.max()) + 1 if data.labels is not None else 0
    cond = Conditioning(cfg.cond, K)
    torch.manual_seed(t.seed)
    G, D = build_models(cfg.model, data.shape, packed_shape(data.shape, cfg.tech.pack), cfg.cond, K)
    if cfg.tech.spectral_norm:
        apply_spectral_norm(D)
    G, D = G.to(device), D.to(device)
    if t.channels_last and len(data.shape) == 3:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g = make_optimizer(G.parameters(), cfg.optim, cfg.optim.lr_g, device)
    opt_d = make_optimizer(D.parameters(), cfg.optim, cfg.optim.lr_d, device)
    rows = cond.grid_rows()
    grid_cols = max(1, t.num_samples // rows) if rows else 0
    n_fixed = rows * grid_cols if rows else t.num_samples
    fixed_z = sample_z(n_fixed, cfg.model.latent_dim, cfg.model.latent_dist,
                       generator=torch.Generator().manual_seed(t.seed + 12345)).to(device)
    fixed_y = cond.grid(grid_cols, device) if rows else None
    labelled = None
    if cond.mode == "ssgan":
        labelled = pick_labelled(data.labels.cpu(), cfg.cond.labels_per_class, t.seed).to(data.x.device)
    G_ema = make_ema(G) if t.ema_decay else None
    tc = cfg.tech
    replay = ReplayBuffer(tc.replay_size, tc.replay_ratio, data.shape).to(device) if tc.replay_size else None
    ha = (HistoricalAverage(G), HistoricalAverage(D)) if tc.historical_averaging else (None, None)
    objective = OBJECTIVES.get(cfg.loss.name)
    if cfg.tech.label_smoothing < 1.0 or cfg.tech.label_flip > 0:  # BCE with soft or flipped targets
        objective = dataclasses.replace(objective, d=functools.partial(
            bce_d_targets, real_target=cfg.tech.label_smoothing, flip=cfg.tech.label_flip))
    G_train, D_train = wrap_for_training(G, D, cfg, device, d)
    z_gen = torch.Generator(device=device).manual_seed(t.seed + 777)
    if d.rank > 0:  # dropout, augmentation, replay: each process its own stream
        torch.manual_seed(t.seed + 1_000_003 * d.rank)
    log_every = t.log_every or (20 if device.type == "cuda" else 1)
    return Setup(cfg, device, data, G, D, opt_g, opt_d, objective, fixed_z, G_ema, replay=replay,
                 ha_g=ha[0], ha_d=ha[1], dist=d, G_train=G_train, D_train=D_train, z_gen=z_gen,
                 prec=Precision(t.amp, device), log_every=log_every, cond=cond, fixed_y=fixed_y,
                 grid_cols=grid_cols, labelled=labelled)


def pick_labelled(labels: torch.Tensor, per_class: Optional[int], seed: int) -> torch.Tensor:
    """Indices of `per_class` examples of each class (a seeded random choice; None: every example)."""
    if per_class is None:
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed + 99)
    chosen = []
    for k in range(int(labels.max()) + 1):
        idx = (labels == k).nonzero().flatten()
        if len(idx) < per_class:
            raise GankitError(f"class {k} has {len(idx)} examples, fewer than cond.labels_per_class={per_class}; "
                              "lower --labels-per-class")
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values
