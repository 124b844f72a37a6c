"""Training of image-to-image translation: Pix2Pix (paired) and CycleGAN (unpaired).

Same run folder, checkpoints (atomic, keep K, exact resume), progress, log.jsonl, loss curves, per-epoch
sample strips and report.html as the other models. A step is one batch: the discriminator(s) update,
then the generator(s).

Pix2Pix (Isola et al. 2017): D sees (A, B) pairs stacked along channels; G minimises the BCE adversarial
loss + l1_lambda * |G(A) - B|_1; D's loss is halved. CycleGAN (Zhu et al. 2017): G: A->B, F: B->A,
least-squares adversarial losses for D_A and D_B, cycle_lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1),
identity * cycle_lambda * (|G(b) - b|_1 + |F(a) - a|_1), D trained on a history pool of 50 fakes, lr
constant for the first half of the epochs and linear to zero over the second.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import CondConfig, Config, LossConfig, TechConfig
from ..data import to_float
from ..data.paired import jitter, load_translation_data
from ..errors import GankitError
from ..models.translation import TRANSLATORS, build_translators, translate_batch
from ..schedules import value_at
from .augment import ADA_KEYS, make_ada, mean_sign
from .dist import SINGLE, Dist
from .optimizers import make_optimizer
from .recipe import Recipe
from .setup import epoch_permutation
from .steps import grad_norm


class ImagePool:
    """CycleGAN's history of generated images: each new fake is returned with probability 1/2, else it
    replaces a random stored one, which is returned instead (Shrivastava et al. 2017)."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def query(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if self.size == 0:
            return x
        out = []
        for img in x.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=generator) < 0.5:
                k = int(torch.randint(len(self.images), (), generator=generator))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": torch.stack(self.images) if self.images else None}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"].unbind(0)) if state.get("images") is not None else []


class TranslationRecipe(Recipe):
    """What Pix2Pix and CycleGAN share: two image sets, their batches with jitter, the strips of held-out
    examples, the held-out scores for --eval-every."""
    supports_dist = supports_amp = supports_compile = False
    rt_threshold = 0.0  # D's outputs are split into real and fake here (ADA's r_t): logits at 0

    def __init__(self, cfg: Config, dist: Dist = SINGLE):
        super().__init__(cfg, dist)
        _refuse_gan_settings(cfg)
        t = cfg.train
        self.family = TRANSLATORS.get(cfg.model.name)
        self.probabilities = self.family.probabilities  # Pix2Pix: BCE; CycleGAN: least squares
        A, B = load_translation_data(cfg, "train", self.family.paired)
        self.A, self.B = A.to(self.device), B.to(self.device)
        self.n = self._pairs(A, B)
        if self.n < t.batch_size:
            raise GankitError(f"the dataset has {self.n} images per domain, fewer than the batch size "
                              f"{t.batch_size}; lower --batch-size")
        self.steps_per_epoch, self.shape = self.n // t.batch_size, tuple(A.shape[1:])
        try:
            self.test = load_translation_data(cfg, "test", self.family.paired)
        except GankitError:
            self.test = (A[:8], B[:8])  # no held-out set: show training images in the strips
        torch.manual_seed(t.seed)
        self.nets = {k: v.to(self.device) for k, v in build_translators(cfg, A.shape[1], A.shape[2]).items()}
        self.generators = tuple(k for k in self.nets if k.startswith("G"))
        params = {k: [p for name, net in self.nets.items() if name.startswith(k.upper()) for p in net.parameters()]
                  for k in ("g", "d")}
        self.optims = {k: make_optimizer(params[k], cfg.optim, lr, self.device)
                       for k, lr in (("g", value_at(cfg.optim.lr_g)), ("d", value_at(cfg.optim.lr_d)))}
        self.gen = torch.Generator().manual_seed(t.seed + 5)  # jitter, pool, B order (unpaired)
        # adaptive augmentation of every D input; a Pix2Pix pair [A | B] moves as one image
        self.ada = make_ada(cfg.tech, self.shape, t.batch_size, self.device, self.rt_threshold, channels=A.shape[1])
        self.finish_setup()

    def seen(self, x: Tensor) -> Tensor:
        """What D sees of its input: x, augmented when adaptive augmentation is on."""
        return x if self.ada is None else self.ada(x)

    def ada_stats(self, real_outs: list[Tensor]) -> dict[str, Tensor]:
        """After the D update: r_t from D's outputs on the real images (every D's), p adjusted when due; p, r_t."""
        if self.ada is None:
            return {}
        return self.ada.observe(torch.stack([mean_sign(r, self.rt_threshold) for r in real_outs]).mean())

    def _pairs(self, A: Tensor, B: Tensor) -> int:
        return min(len(A), len(B))

    def batch(self, epoch: int, i: int) -> tuple[Tensor, Tensor]:
        B = self.cfg.train.batch_size
        perm, perm_b = self.epoch_order(epoch, self._orders)
        idx, idx_b = perm[i * B:(i + 1) * B], perm_b[i * B:(i + 1) * B]
        a, b = to_float(self.A[idx.to(self.A.device)]), to_float(self.B[idx_b.to(self.B.device)])
        return self._jitter(a, b) if self.cfg.i2i.jitter else (a, b)

    def _orders(self, epoch: int) -> tuple[Tensor, Tensor]:
        """The epoch's order of A and of B (unpaired: independent orders)."""
        seed = self.cfg.train.seed
        return (epoch_permutation(seed, epoch, self.n),
                epoch_permutation(seed + 1, epoch, len(self.B))[:self.n])

    def _jitter(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return jitter(a.cpu(), self.gen).to(self.device), jitter(b.cpu(), self.gen).to(self.device)

    def reference_samples(self) -> Tensor:
        return self.B[:64].cpu()

    def translate(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        return translate_batch({k: self.sampling_net(k) for k in self.nets}, self.cfg, x, direction)

    @torch.no_grad()
    def write_grid(self, path: Path, title: str = "") -> None:
        """Rows of input | output | target (pix2pix) or a | G(a) | F(G(a)) and b | F(b) | G(F(b)) (cyclegan)."""
        from torchvision.utils import save_image

        nets = [self.sampling_net(k) for k in self.nets]
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            a, b = (to_float(x[:8].to(self.device)) for x in self.test)
            rows = self._strip_rows(a, b)
        for net, mode in zip(nets, modes):
            net.train(mode)
        grid = torch.stack(rows, 1).flatten(0, 1)  # [8*cols, C, H, W]: per example its row of columns
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path, nrow=len(rows), normalize=True, value_range=(-1, 1), padding=2)
        return None

    def evaluator(self):
        from ..metrics.translation import HeldOutScores

        return HeldOutScores(self.cfg, self.device)

    def extra_state(self) -> dict:
        return {"gen": self.gen.get_state(), "ada": self.ada.state_dict() if self.ada else None}

    def load_extra_state(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        if self.ada is not None and state.get("ada") is not None:
            self.ada.load_state_dict(state["ada"])


class Pix2PixRecipe(TranslationRecipe):
    """Pix2Pix (Isola et al. 2017): D sees (A, B) pairs stacked along channels; G minimises the BCE
    adversarial loss + l1_lambda * |G(A) - B|_1; D's loss is halved."""

    def _pairs(self, A: Tensor, B: Tensor) -> int:
        return len(A)

    def _orders(self, epoch: int) -> tuple[Tensor, Tensor]:
        perm = epoch_permutation(self.cfg.train.seed, epoch, self.n)
        return perm, perm

    def _jitter(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        ab = jitter(torch.cat([a, b], 1).cpu(), self.gen).to(self.device)  # the same jitter for both halves
        return ab[:, :a.shape[1]], ab[:, a.shape[1]:]

    def _strip_rows(self, a: Tensor, b: Tensor) -> list[Tensor]:
        return [a, self.sampling_net("G")(a), b]

    def step(self, batch: tuple[Tensor, Tensor], step: int) -> dict[str, Tensor]:
        a, b = batch
        G, D, i = self.nets["G"], self.nets["D"], self.cfg.i2i
        fake = G(a)
        stats = {}
        adv = fake.new_zeros(())
        if i.adversarial:
            real_out, fake_out = D(self.seen(torch.cat([a, b], 1))), D(self.seen(torch.cat([a, fake.detach()], 1)))
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                            + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
            stats["grad_d"] = _update(self.optims["d"], loss_d)
            D.requires_grad_(False)
            out = D(self.seen(torch.cat([a, fake], 1)))
            adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
            D.requires_grad_(True)
            stats.update(loss_d=loss_d, d_real=torch.sigmoid(real_out).mean(), d_fake=torch.sigmoid(fake_out).mean(),
                         loss_adv=adv, **self.ada_stats([real_out]))
        l1 = (fake - b).abs().mean()
        loss_g = adv + i.l1_lambda * l1
        stats["grad_g"] = _update(self.optims["g"], loss_g)
        self.update_ema(step)
        stats.update(loss_g=loss_g, l1=l1)
        return {k: v.detach() for k, v in stats.items()}


class CycleGANRecipe(TranslationRecipe):
    """CycleGAN (Zhu et al. 2017): G: A->B, F: B->A, least-squares adversarial losses for D_A and D_B,
    cycle_lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1), identity * cycle_lambda * (|G(b) - b|_1 +
    |F(a) - a|_1), D trained on a history pool of 50 fakes, lr constant for the first half of training and
    linear to zero over the second."""
    rt_threshold = 0.5  # least squares with targets 0 (fake) and 1 (real)

    def __init__(self, cfg: Config, dist: Dist = SINGLE):
        super().__init__(cfg, dist)
        self.pools = {"A": ImagePool(cfg.i2i.pool_size), "B": ImagePool(cfg.i2i.pool_size)}

    def _strip_rows(self, a: Tensor, b: Tensor) -> list[Tensor]:
        G, Fn = self.sampling_net("G_AB"), self.sampling_net("G_BA")
        fb, fa = G(a), Fn(b)
        return [a, fb, Fn(fb), b, fa, G(fa)]

    def lr_factor(self, pos) -> float:
        """Constant for the first half of the budget (steps or minutes), then linear to 0."""
        if not self.cfg.i2i.lr_decay:
            return 1.0
        t = self.cfg.train
        limits = [x for x in (t.max_steps, t.epochs * self.steps_per_epoch if t.epochs else None) if x]
        frac = pos.progress(min(limits) if limits else None, t.minutes * 60 if t.minutes else float("inf"))
        return 1.0 if frac < 0.5 else max(0.0, 1.0 - (frac - 0.5) / 0.5)

    def step(self, batch: tuple[Tensor, Tensor], step: int) -> dict[str, Tensor]:
        a, b = batch
        n, i = self.nets, self.cfg.i2i
        G, Fn, DA, DB = n["G_AB"], n["G_BA"], n["D_A"], n["D_B"]
        lam, lam_id = i.cycle_lambda, i.identity * i.cycle_lambda
        DA.requires_grad_(False)
        DB.requires_grad_(False)
        fake_b, fake_a = G(a), Fn(b)
        out_b, out_a = DB(self.seen(fake_b)), DA(self.seen(fake_a))
        adv = F.mse_loss(out_b, torch.ones_like(out_b)) + F.mse_loss(out_a, torch.ones_like(out_a))
        cycle = (Fn(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
        ident = (G(b) - b).abs().mean() + (Fn(a) - a).abs().mean() if lam_id > 0 else a.new_zeros(())
        loss_g = adv + lam * cycle + lam_id * ident
        grad_g = _update(self.optims["g"], loss_g)
        self.update_ema(step)
        DA.requires_grad_(True)
        DB.requires_grad_(True)
        pa, pb = self.pools["A"].query(fake_a, self.gen), self.pools["B"].query(fake_b, self.gen)  # history of fakes
        loss_d, outs, reals = 0.0, [], []
        for D, real, fake in ((DA, a, pa), (DB, b, pb)):
            r, f = D(self.seen(real)), D(self.seen(fake.detach()))
            reals.append(r)
            loss_d = loss_d + 0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
            outs.append((r.mean(), f.mean()))
        grad_d = _update(self.optims["d"], loss_d)
        stats = {"loss_g": loss_g, "loss_d": loss_d, "grad_g": grad_g, "grad_d": grad_d, "loss_adv": adv,
                 "cycle": cycle, "identity": ident,
                 "d_real": (outs[0][0] + outs[1][0]) / 2, "d_fake": (outs[0][1] + outs[1][1]) / 2,
                 "lr_scale": torch.tensor(self.lr_factor_now * self.lr_scale), **self.ada_stats(reals)}
        return {k: v.detach() for k, v in stats.items()}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k])


def _refuse_gan_settings(cfg: Config) -> None:
    """The loss, technique and label settings of GANs from z do nothing here: refuse them, never ignore them."""
    changed = [f"{name}.{f.name}" for name, section, default in
               (("loss", cfg.loss, LossConfig()), ("tech", cfg.tech, TechConfig()), ("cond", cfg.cond, CondConfig()))
               for f in dataclasses.fields(section)
               if f.name not in ADA_KEYS and getattr(section, f.name) != getattr(default, f.name)]
    changed += ["optim.n_critic"] if cfg.optim.n_critic != 1 else []
    if changed:
        raise GankitError(f"{', '.join(changed)}: for GANs from z only; {cfg.model.name} has its own losses (the i2i "
                          "section): remove these settings")


def _update(opt: torch.optim.Optimizer, loss: Tensor) -> Tensor:
    """One optimizer step on loss. Returns the gradient norm of the networks it updates (for the log)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = grad_norm(p for group in opt.param_groups for p in group["params"])
    opt.step()
    return norm


RECIPES = {"pix2pix": Pix2PixRecipe, "cyclegan": CycleGANRecipe}  # the names of models.translation.TRANSLATORS


def translation_recipe(cfg: Config, dist: Dist = SINGLE) -> TranslationRecipe:
    return RECIPES[cfg.model.name](cfg, dist)
