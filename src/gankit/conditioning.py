"""What labels and latent codes do in a run (config section `cond`), one strategy class per `cond.mode`:
which input G gets, how D's networks are wrapped and what they return, what is drawn for the fakes, the
extra loss terms and the rows of the sample grid. The training step, sampling, evaluation and `gankit
classify` ask the strategy; nothing outside this module compares `cond.mode`.

    mode = MODES.get(cfg.cond.mode)(cfg.cond, num_classes)
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CondConfig, ModelConfig
from .errors import GankitError
from .models import DISCRIMINATORS, GENERATORS, build_models
from .models.conditional import (
    AuxHeadDiscriminator,
    ConcatDiscriminator,
    ConditionalGenerator,
    KPlusOneDiscriminator,
    ProjectionDiscriminator,
    flat_width,
)
from .models.registry import pair_names
from .registry import Registry

MODES: Registry[type] = Registry("cond.mode")


@MODES.register("none")
class Unlabelled:
    """G(z) and D(x): no labels, no codes."""
    needs_labels = False  # the dataset must have labels (2 classes or more)
    takes_class = False  # G draws a requested class (--class, per-class evaluation, class rows in the grid)
    classifies = False  # D's auxiliary output is a class distribution (gankit classify)
    active = False  # G or D take or return more than the plain GAN
    adversarial_weight = 1.0  # of D's real/fake loss (the K+1 GAN weighs it against its labelled cross-entropy)

    def __init__(self, cc: CondConfig = CondConfig(), num_classes: int = 0):
        self.cc, self.K = cc, num_classes

    def check_data(self) -> None:
        """Refuse data this mode cannot train on (called when training starts, not when sampling)."""
        if self.needs_labels and self.K < 2:
            raise GankitError(f"cond.mode={self.cc.mode} needs a labelled dataset with 2 or more classes (named "
                              "datasets, or an image folder with one subfolder per class)")

    # ------------------------------------------------------------ networks
    def build(self, cfg: ModelConfig, shape: tuple, d_shape: Optional[tuple] = None) -> tuple[nn.Module, nn.Module]:
        """G and D for examples of `shape` (D's input may be packed: d_shape)."""
        return build_models(cfg, shape, d_shape)

    def _parts(self, cfg: ModelConfig, shape: tuple, g_extra: int = 0, d_channels: int = 0):
        """The registered G (z widened by g_extra) and D (d_channels more input channels) to wrap."""
        g_name, d_name = pair_names(cfg, shape)
        G = GENERATORS.get(g_name)(dataclasses.replace(cfg, latent_dim=cfg.latent_dim + g_extra), shape)
        D = DISCRIMINATORS.get(d_name)(cfg, (shape[0] + d_channels, *shape[1:]))
        return G, D

    # ------------------------------------------------------------ what G gets
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               device: torch.device | str = "cpu") -> Optional[Tensor]:
        """Classes [n] or codes [n, code_dim] for n fakes; None when G takes none."""
        return None

    def grid_rows(self) -> int:
        """Rows of the per-epoch grid (0: a square grid)."""
        return 0

    def grid(self, n_per_row: int, device: torch.device | str = "cpu") -> Optional[Tensor]:
        """G's second input for a grid with one class (or category) per row."""
        return None

    def generate(self, G: nn.Module, z: Tensor, y: Optional[Tensor]) -> Tensor:
        return G(z)

    def generate_for_g_step(self, G: nn.Module, z: Tensor, y: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        """(images, class logits of G's own head or None) for G's update."""
        return self.generate(G, z, y), None

    def real_y(self, labels: Optional[Tensor], idx: Tensor, device: torch.device) -> Optional[Tensor]:
        """What D is shown beside the real examples at idx (their classes, for class-conditional D's)."""
        return None

    def traversal(self, code: str, z_rows: Tensor, steps: int = 8) -> Tensor:
        raise GankitError("--vary needs an InfoGAN run (cond.mode=infogan)")

    # ------------------------------------------------------------ what D returns, and the losses
    def judge(self, D: nn.Module, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """(real/fake logits [N], auxiliary output or None)."""
        return D(x), None

    def d_extra(self, aux_real, aux_fake, y_real, y_fake) -> dict[str, Tensor]:
        """Terms added to D's loss, by name (for the log)."""
        return {}

    def g_extra(self, D: nn.Module, fake: Tensor, aux_fake, y_fake, g_logits) -> dict[str, Tensor]:
        """Terms added to G's loss. aux_fake: D's auxiliary output on the fakes when already computed."""
        return {}


class _ClassConditional(Unlabelled):
    needs_labels = takes_class = active = True

    def _g(self, cfg: ModelConfig, shape: tuple, d_channels: int = 0, classifier: bool = False):
        extra = self.cc.embed_dim if self.cc.g == "concat" else 0
        G, D = self._parts(cfg, shape, extra, d_channels)
        encode = nn.Embedding(self.K, self.cc.embed_dim) if extra else None
        try:
            return ConditionalGenerator(G, self.K, encode, cbn=not extra, classifier=classifier), D
        except ValueError as e:
            raise GankitError(f"{e}; use cond.g=concat or model.g_batchnorm=true") from None

    def sample(self, n, generator=None, device="cpu"):
        return torch.randint(self.K, (n,), generator=generator, device=device)

    def grid_rows(self) -> int:
        return self.K

    def grid(self, n_per_row, device="cpu"):
        return torch.arange(self.K, device=device).repeat_interleave(n_per_row)

    def generate(self, G, z, y):
        return G(z, y)

    def real_y(self, labels, idx, device):
        return labels[idx.to(labels.device)].to(device)


@MODES.register("cgan")
class CGAN(_ClassConditional):
    """G(z, y); D by projection (Miyato & Koyama 2018) or by one-hot maps concatenated to its input."""

    def build(self, cfg, shape, d_shape=None):
        concat_d = self.cc.d == "concat"
        G, D = self._g(cfg, shape, d_channels=self.K if concat_d else 0)
        return G, ConcatDiscriminator(D, self.K) if concat_d else ProjectionDiscriminator(D, self.K, shape)

    def judge(self, D, x, y=None):
        return D(x, y)


@MODES.register("acgan")
class ACGAN(_ClassConditional):
    """AC-GAN (Odena et al. 2017): D's class head; its cross-entropy joins both losses."""
    classifies = True

    def build(self, cfg, shape, d_shape=None):
        G, D = self._g(cfg, shape, classifier=self.cc.g_classifier)
        return G, AuxHeadDiscriminator(D, self.K, nn.Linear(flat_width(D, shape)[0], self.K))

    def judge(self, D, x, y=None):
        return D(x)

    def generate_for_g_step(self, G, z, y):
        return G(z, y, with_logits=True) if self.cc.g_classifier else (G(z, y), None)

    def d_extra(self, aux_real, aux_fake, y_real, y_fake):
        ce = F.cross_entropy(aux_real.float(), y_real) + F.cross_entropy(aux_fake.float(), y_fake)
        return {"class_d": self.cc.aux_weight * ce}

    def g_extra(self, D, fake, aux_fake, y_fake, g_logits):
        aux_fake = D(fake)[1] if aux_fake is None else aux_fake
        out = {"class_g": self.cc.aux_weight * F.cross_entropy(aux_fake.float(), y_fake)}
        if g_logits is not None:  # the dynamically aligned classifier on G's own features
            out["class_g_head"] = self.cc.aux_weight * F.cross_entropy(g_logits.float(), y_fake)
        return out


@MODES.register("infogan")
class InfoGAN(Unlabelled):
    """InfoGAN (Chen et al. 2016): categorical and continuous codes beside z; a Q head on D's body."""
    active = True

    def __init__(self, cc: CondConfig = CondConfig(), num_classes: int = 0):
        super().__init__(cc, num_classes)
        self.cat, self.cont = list(cc.cat_codes), cc.cont_codes

    @property
    def code_dim(self) -> int:
        return sum(self.cat) + self.cont

    def build(self, cfg, shape, d_shape=None):
        G, D = self._parts(cfg, shape, self.code_dim)
        width = flat_width(D, shape)[0]
        q = nn.Sequential(nn.Linear(width, 128), nn.LeakyReLU(0.2, True), nn.Linear(128, self.code_dim))
        return ConditionalGenerator(G, max(self.K, 1)), AuxHeadDiscriminator(D, max(self.K, 1), q)

    def sample(self, n, generator=None, device="cpu"):
        parts = [F.one_hot(torch.randint(k, (n,), generator=generator, device=device), k).float() for k in self.cat]
        if self.cont:
            parts.append(torch.rand(n, self.cont, generator=generator, device=device) * 2 - 1)
        return torch.cat(parts, dim=1)  # [n, code_dim]

    def grid_rows(self) -> int:
        return self.cat[0] if self.cat else 8

    def grid(self, n_per_row, device="cpu"):
        rows = self.grid_rows()
        codes = self.sample(rows * n_per_row, torch.Generator().manual_seed(0)).to(device)
        if self.cat:  # row r shows category r of the first code
            codes[:, :self.cat[0]] = F.one_hot(torch.arange(rows, device=device).repeat_interleave(n_per_row),
                                               self.cat[0]).float()
        return codes

    def generate(self, G, z, y):
        return G(z, y)

    def traversal(self, code: str, z_rows: Tensor, steps: int = 8) -> Tensor:
        """Codes [rows*cols, D]: rows keep one z (and the other codes); columns vary `code` ('cat0', ... over
        its categories, or 'cont0', ... from -2 to 2)."""
        names = [f"cat{i}" for i in range(len(self.cat))] + [f"cont{i}" for i in range(self.cont)]
        if code not in names:
            raise GankitError(f"unknown code '{code}'; this run has: {', '.join(names)}")
        rows = z_rows.shape[0]
        base = self.sample(rows, torch.Generator().manual_seed(1))
        base[:, sum(self.cat):] = 0.0
        i = names.index(code)
        if i < len(self.cat):
            k, off = self.cat[i], sum(self.cat[:i])
            codes = base.repeat_interleave(k, 0)
            codes[:, off:off + k] = torch.eye(k).repeat(rows, 1)
            return codes
        codes = base.repeat_interleave(steps, 0)
        codes[:, sum(self.cat) + i - len(self.cat)] = torch.linspace(-2, 2, steps).repeat(rows)
        return codes

    def judge(self, D, x, y=None):
        return D(x)

    def info_loss(self, q: Tensor, codes: Tensor) -> Tensor:
        """The variational bound on -I(c; G(z, c)) up to H(c): cross-entropy of each categorical code and a
        unit-variance Gaussian log-likelihood (0.5 * squared error) of the continuous ones."""
        q = q.float()
        loss, off = q.new_zeros(()), 0
        for k in self.cat:
            loss = loss + F.cross_entropy(q[:, off:off + k], codes[:, off:off + k].argmax(1))
            off += k
        if self.cont:
            loss = loss + 0.5 * (q[:, off:] - codes[:, off:]).pow(2).sum(1).mean()
        return loss

    def d_extra(self, aux_real, aux_fake, y_real, y_fake):
        return {"info": self.cc.info_weight * self.info_loss(aux_fake, y_fake)}

    def g_extra(self, D, fake, aux_fake, y_fake, g_logits):
        aux_fake = D(fake)[1] if aux_fake is None else aux_fake
        return {"info_g": self.cc.info_weight * self.info_loss(aux_fake, y_fake)}


def balanced_stream(classes: Tensor, length: int, generator: torch.Generator) -> Tensor:
    """`length` positions into `classes` (the labelled examples' classes), balanced per class: each round takes
    one example of every class, in a random order of the classes, and each class cycles through its examples
    in fresh random orders (Salimans et al. repeat the labelled set in new permutations every epoch)."""
    groups = [(classes == k).nonzero().flatten() for k in classes.unique().tolist()]
    rounds = -(-length // len(groups))
    columns = [torch.cat([g[torch.randperm(len(g), generator=generator)] for _ in range(-(-rounds // len(g)))])[:rounds]
               for g in groups]
    grid = torch.stack(columns, 1)  # [rounds, classes]
    order = torch.rand(grid.shape, generator=generator).argsort(1)  # the classes' order within each round
    return grid.gather(1, order).flatten()[:length]


def random_shift(x: Tensor, pixels: int = 2) -> Tensor:
    """Images [N,C,H,W] each shifted by up to `pixels` in x and y (edges replicated); points unchanged."""
    if x.dim() != 4:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, mode="replicate").permute(0, 2, 3, 1)  # [N,H+2p,W+2p,C]
    dy, dx = (torch.randint(0, 2 * pixels + 1, (2, n, 1, 1), device=x.device))
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy  # [N,H,1]
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx  # [N,1,W]
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols].permute(0, 3, 1, 2)  # [N,C,H,W]


def pull_away(f: Tensor) -> Tensor:
    """The pull-away term (Zhao et al. 2017), Dai et al.'s cheap proxy of G's entropy: the mean squared cosine
    similarity of the fakes' features over distinct pairs. f: [N,F]. Returns a scalar."""
    n, u = f.shape[0], F.normalize(f, dim=1)
    cos = u @ u.T  # [N,N]
    return (cos.pow(2).sum() - cos.diagonal().pow(2).sum()) / (n * (n - 1))


@MODES.register("ssgan")
class SemiSupervised(Unlabelled):
    """The K+1 GAN (Salimans et al. 2016): D is a K-class classifier whose real/fake logit is logsumexp
    of its K logits, l_unl = unsup_weight x (BCE of real and fake on that logit); a labelled batch adds the
    supervised cross-entropy. G is unconditional. Switches (cond.*): the bad-GAN terms of G (pull_away,
    low_density), consistency of D's classes between two shifts of the unlabelled batch."""
    needs_labels = classifies = active = True

    @property
    def adversarial_weight(self) -> float:
        return self.cc.unsup_weight

    def build(self, cfg, shape, d_shape=None):
        G, D = build_models(cfg, shape)
        return G, KPlusOneDiscriminator(D, self.K, shape)

    def judge(self, D, x, y=None):
        return D(x)

    def labelled_terms(self, D: nn.Module, real: Tensor, labelled: tuple[Tensor, Tensor], view) -> dict[str, Tensor]:
        """D's terms beyond the real/fake loss: cross-entropy on the labelled batch; with cond.consistency, the
        squared distance between D's class distributions on two random shifts of the unlabelled batch."""
        out = {"class_d": F.cross_entropy(D(view(labelled[0]))[1].float(), labelled[1])}
        if self.cc.consistency:
            p, q = (D(view(random_shift(real)))[1].float().softmax(1) for _ in range(2))  # [N,K] each
            out["consistency"] = self.cc.consistency * (p - q).pow(2).sum(1).mean()
        return out

    def g_extra(self, D, fake, aux_fake, y_fake, g_logits):
        """Bad GAN (Dai et al. 2017), as switches: the pull-away term on D's features of the fakes stands in for
        G's entropy; the low-density term pushes back fakes D calls real (log Z > 0, i.e. D(x) > 1/2)."""
        cc, out = self.cc, {}
        if cc.pull_away or cc.low_density:
            f = D.features(fake)
            if cc.pull_away:
                out["pull_away"] = cc.pull_away * pull_away(f.flatten(1).float())
            if cc.low_density:
                out["low_density"] = cc.low_density * F.relu(D.from_features(f)[0].float()).mean()
        return out


NONE = Unlabelled()


def mode_of(cc: CondConfig, num_classes: int = 0) -> Unlabelled:
    """The strategy of a run's `cond` section."""
    return MODES.get(cc.mode)(cc, num_classes)
