"""What labels and latent codes do in a run (config section `cond`): which input G and D get, what is
drawn for the fakes, and the extra loss terms. One object, used by the training steps and by sampling."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CondConfig
from .errors import GankitError


class Conditioning:
    def __init__(self, cc: CondConfig, num_classes: int = 0):
        self.cc, self.mode, self.K = cc, cc.mode, num_classes
        if self.uses_labels and num_classes < 2:
            raise GankitError(f"cond.mode={self.mode} needs a labelled dataset with 2 or more classes (named "
                              "datasets, or an image folder with one subfolder per class)")
        self.cat = list(cc.cat_codes) if self.mode == "infogan" else []
        self.cont = cc.cont_codes if self.mode == "infogan" else 0

    @property
    def active(self) -> bool:
        return self.mode != "none"

    @property
    def uses_labels(self) -> bool:
        return self.mode in ("cgan", "acgan", "ssgan")

    @property
    def conditional_g(self) -> bool:
        """G takes a second input: a class (cgan, acgan) or a code vector (infogan)."""
        return self.mode in ("cgan", "acgan", "infogan")

    @property
    def code_dim(self) -> int:
        return sum(self.cat) + self.cont

    # ------------------------------------------------------------ what G gets
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               device: torch.device | str = "cpu") -> Optional[Tensor]:
        """Classes [n] (uniform) or InfoGAN codes [n, code_dim] for n fakes; None when G takes none."""
        if self.mode in ("cgan", "acgan"):
            return torch.randint(self.K, (n,), generator=generator, device=device)
        if self.mode == "infogan":
            parts = [F.one_hot(torch.randint(k, (n,), generator=generator, device=device), k).float()
                     for k in self.cat]
            if self.cont:
                parts.append(torch.rand(n, self.cont, generator=generator, device=device) * 2 - 1)
            return torch.cat(parts, dim=1)
        return None

    def grid(self, n_per_row: int, device: torch.device | str = "cpu") -> Optional[Tensor]:
        """G's second input for a grid with one class (or one category of the first code) per row."""
        if self.mode in ("cgan", "acgan"):
            return torch.arange(self.K, device=device).repeat_interleave(n_per_row)
        if self.mode == "infogan":
            rows = self.cat[0] if self.cat else 8
            codes = self.sample(rows * n_per_row, torch.Generator().manual_seed(0)).to(device)
            if self.cat:
                codes[:, :self.cat[0]] = F.one_hot(torch.arange(rows, device=device).repeat_interleave(n_per_row),
                                                   self.cat[0]).float()
            return codes
        return None

    def grid_rows(self) -> int:
        """Rows of the per-epoch grid (0: a square grid)."""
        if self.mode in ("cgan", "acgan"):
            return self.K
        if self.mode == "infogan":
            return self.cat[0] if self.cat else 8
        return 0

    def traversal(self, code: str, z_rows: Tensor, steps: int = 8) -> Tensor:
        """InfoGAN latent traversal: rows keep one z (and the other codes); columns vary `code`
        ('cat0', 'cat1', ... over its categories, or 'cont0', ... from -2 to 2). Returns codes [rows*cols, D]."""
        if self.mode != "infogan":
            raise GankitError("--vary needs an InfoGAN run (cond.mode=infogan)")
        names = [f"cat{i}" for i in range(len(self.cat))] + [f"cont{i}" for i in range(self.cont)]
        if code not in names:
            raise GankitError(f"unknown code '{code}'; this run has: {', '.join(names)}")
        rows = z_rows.shape[0]
        base = self.sample(rows, torch.Generator().manual_seed(1))
        if self.cont:
            base[:, sum(self.cat):] = 0.0
        if code.startswith("cat"):
            i = int(code[3:])
            k, off = self.cat[i], sum(self.cat[:i])
            values = torch.eye(k)
            codes = base.repeat_interleave(k, 0)
            codes[:, off:off + k] = values.repeat(rows, 1)
        else:
            i = int(code[4:])
            col = sum(self.cat) + i
            codes = base.repeat_interleave(steps, 0)
            codes[:, col] = torch.linspace(-2, 2, steps).repeat(rows)
        return codes

    def generate(self, G: nn.Module, z: Tensor, y: Optional[Tensor]) -> Tensor:
        return G(z) if y is None or not self.conditional_g else G(z, y)

    # ------------------------------------------------------------ what D gets and returns
    def judge(self, D: nn.Module, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """(real/fake logits [N], auxiliary output or None). y: the class shown to a cGAN's D."""
        if not self.active:
            return D(x), None
        return D(x, y) if self.mode == "cgan" else D(x)

    # ------------------------------------------------------------ extra losses
    def info_loss(self, q: Tensor, codes: Tensor) -> Tensor:
        """InfoGAN's variational bound on -I(c; G(z, c)) (up to the constant H(c)): cross-entropy of each
        categorical code, and a unit-variance Gaussian log-likelihood (0.5 * squared error) of the
        continuous ones."""
        q = q.float()
        loss, off = q.new_zeros(()), 0
        for k in self.cat:
            loss = loss + F.cross_entropy(q[:, off:off + k], codes[:, off:off + k].argmax(1))
            off += k
        if self.cont:
            loss = loss + 0.5 * (q[:, off:] - codes[:, off:]).pow(2).sum(1).mean()
        return loss

    def d_extra(self, aux_real: Optional[Tensor], aux_fake: Optional[Tensor], y_real: Optional[Tensor],
                y_fake: Optional[Tensor]) -> dict[str, Tensor]:
        """Terms added to D's loss, by name (for the log)."""
        if self.mode == "acgan":
            ce = F.cross_entropy(aux_real.float(), y_real) + F.cross_entropy(aux_fake.float(), y_fake)
            return {"class_d": self.cc.aux_weight * ce}
        if self.mode == "infogan":
            return {"info": self.cc.info_weight * self.info_loss(aux_fake, y_fake)}
        return {}

    def g_extra(self, aux_fake: Optional[Tensor], y_fake: Optional[Tensor],
                g_logits: Optional[Tensor] = None) -> dict[str, Tensor]:
        if self.mode == "acgan":
            out = {"class_g": self.cc.aux_weight * F.cross_entropy(aux_fake.float(), y_fake)}
            if g_logits is not None:  # the dynamically aligned classifier on G's own features
                out["class_g_head"] = self.cc.aux_weight * F.cross_entropy(g_logits.float(), y_fake)
            return out
        if self.mode == "infogan":
            return {"info_g": self.cc.info_weight * self.info_loss(aux_fake, y_fake)}
        return {}


NONE = Conditioning(CondConfig())
