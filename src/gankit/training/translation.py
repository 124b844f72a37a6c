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

import math
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import __version__
from ..config import Config
from ..data import to_float
from ..data.paired import jitter, load_paired, load_unpaired
from ..errors import GankitError
from ..models.translation import PatchDiscriminator, ResnetTranslator, UNetGenerator
from ..observe.plots import plot_losses
from ..observe.progress import Progress
from ..observe.report import write_report
from .checkpoint import load_latest, save_checkpoint
from .setup import create_run_dir, epoch_permutation, make_optimizer, pick_device
from .stats import StatsWriter, read_log


def _norm(cfg: Config) -> str:
    return cfg.i2i.norm if cfg.i2i.norm != "auto" else ("batch" if cfg.model.name == "pix2pix" else "instance")


def build_translators(cfg: Config, channels: int, size: int) -> dict[str, nn.Module]:
    """The networks of a translation run, by name: pix2pix {G, D}; cyclegan {G_AB, G_BA, D_A, D_B}."""
    m, i, norm = cfg.model, cfg.i2i, _norm(cfg)
    if m.name == "pix2pix":
        return {"G": UNetGenerator(channels, channels, size, m.g_width, norm, 0.5, m.dropout_at_sampling),
                "D": PatchDiscriminator(2 * channels, m.d_width, i.patch_layers, norm)}
    return {"G_AB": ResnetTranslator(channels, channels, m.g_width, i.res_blocks, norm),
            "G_BA": ResnetTranslator(channels, channels, m.g_width, i.res_blocks, norm),
            "D_A": PatchDiscriminator(channels, m.d_width, i.patch_layers, norm),
            "D_B": PatchDiscriminator(channels, m.d_width, i.patch_layers, norm)}


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


def load_translation_data(cfg: Config, split: str = "train") -> tuple[Tensor, Tensor]:
    size = cfg.data.image_size or 256
    if cfg.model.name == "pix2pix":
        return load_paired(cfg.data.dataset, size, cfg.data.channels, split)
    return load_unpaired(cfg.data.dataset, size, cfg.data.channels, split)


def translate_batch(nets: dict, cfg: Config, x: Tensor, direction: str = "AtoB") -> Tensor:
    """Images [N,C,H,W] in [-1, 1] of domain A (AtoB) or B (BtoA), translated."""
    if cfg.model.name == "pix2pix":
        if direction != "AtoB":
            raise GankitError("a Pix2Pix run translates A to B only; use --direction AtoB")
        return nets["G"](x)
    return nets["G_AB" if direction == "AtoB" else "G_BA"](x)


class Trainer:
    def __init__(self, cfg: Config):
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.cfg, self.device = cfg, pick_device(t.device)
        A, B = load_translation_data(cfg, "train")
        self.A, self.B = A.to(self.device), B.to(self.device)
        self.paired = cfg.model.name == "pix2pix"
        n = min(len(A), len(B)) if not self.paired else len(A)
        if n < t.batch_size:
            raise GankitError(f"the dataset has {n} images per domain, fewer than the batch size {t.batch_size}; "
                              "lower --batch-size")
        self.n = n
        try:
            self.test = load_translation_data(cfg, "test")
        except GankitError:
            self.test = (A[:8], B[:8])  # no held-out set: show training images in the strips
        torch.manual_seed(t.seed)
        self.nets = {k: v.to(self.device) for k, v in build_translators(cfg, A.shape[1], A.shape[2]).items()}
        gens = [v for k, v in self.nets.items() if k.startswith("G")]
        discs = [v for k, v in self.nets.items() if k.startswith("D")]
        self.opt_g = make_optimizer([p for g in gens for p in g.parameters()], cfg.optim, cfg.optim.lr_g, self.device)
        self.opt_d = make_optimizer([p for d in discs for p in d.parameters()], cfg.optim, cfg.optim.lr_d, self.device)
        self.gen = torch.Generator().manual_seed(t.seed + 5)  # jitter, pool, B order (unpaired)
        self.pools = {"A": ImagePool(cfg.i2i.pool_size), "B": ImagePool(cfg.i2i.pool_size)}

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.cfg.train.batch_size

    def batch(self, idx: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor]:
        a, b = to_float(self.A[idx].to(self.device)), to_float(self.B[idx_b].to(self.device))
        if self.cfg.i2i.jitter:
            if self.paired:  # the same jitter for both halves of a pair
                ab = jitter(torch.cat([a, b], 1).cpu(), self.gen).to(self.device)
                a, b = ab[:, :a.shape[1]], ab[:, a.shape[1]:]
            else:
                a, b = jitter(a.cpu(), self.gen).to(self.device), jitter(b.cpu(), self.gen).to(self.device)
        return a, b

    def step(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        return self._pix2pix(a, b) if self.paired else self._cyclegan(a, b)

    def _pix2pix(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        G, D, i = self.nets["G"], self.nets["D"], self.cfg.i2i
        fake = G(a)
        stats = {}
        if i.adversarial:
            real_out, fake_out = D(torch.cat([a, b], 1)), D(torch.cat([a, fake.detach()], 1))
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                            + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            D.requires_grad_(False)
            out = D(torch.cat([a, fake], 1))
            adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
            D.requires_grad_(True)
            stats.update(loss_d=loss_d, d_real=torch.sigmoid(real_out).mean(), d_fake=torch.sigmoid(fake_out).mean(),
                         loss_adv=adv)
        else:
            adv = fake.new_zeros(())
        l1 = (fake - b).abs().mean()
        loss_g = adv + i.l1_lambda * l1
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        stats.update(loss_g=loss_g, l1=l1)
        return {k: v.detach() for k, v in stats.items()}

    def _cyclegan(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        n, i = self.nets, self.cfg.i2i
        G, Fn, DA, DB = n["G_AB"], n["G_BA"], n["D_A"], n["D_B"]
        lam, lam_id = i.cycle_lambda, i.identity * i.cycle_lambda
        # generators
        DA.requires_grad_(False)
        DB.requires_grad_(False)
        fake_b, fake_a = G(a), Fn(b)
        out_b, out_a = DB(fake_b), DA(fake_a)
        adv = F.mse_loss(out_b, torch.ones_like(out_b)) + F.mse_loss(out_a, torch.ones_like(out_a))
        cycle = (Fn(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
        ident = (G(b) - b).abs().mean() + (Fn(a) - a).abs().mean() if lam_id > 0 else a.new_zeros(())
        loss_g = adv + lam * cycle + lam_id * ident
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        DA.requires_grad_(True)
        DB.requires_grad_(True)
        # discriminators, on a history of fakes
        pa, pb = self.pools["A"].query(fake_a, self.gen), self.pools["B"].query(fake_b, self.gen)
        loss_d = 0.0
        outs = {}
        for name, D, real, fake in (("a", DA, a, pa), ("b", DB, b, pb)):
            r, f = D(real), D(fake.detach())
            loss_d = loss_d + 0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
            outs[name] = (r.mean(), f.mean())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        stats = {"loss_g": loss_g, "loss_d": loss_d, "loss_adv": adv, "cycle": cycle, "identity": ident,
                 "d_real": (outs["a"][0] + outs["b"][0]) / 2, "d_fake": (outs["a"][1] + outs["b"][1]) / 2}
        return {k: v.detach() for k, v in stats.items()}

    def set_lr(self, progress: float) -> float:
        """CycleGAN: the learning rates stay for the first half of training, then fall linearly to 0."""
        if self.paired or not self.cfg.i2i.lr_decay:
            return 1.0
        scale = 1.0 if progress < 0.5 else max(0.0, 1.0 - (progress - 0.5) / 0.5)
        for opt, lr in ((self.opt_g, self.cfg.optim.lr_g), (self.opt_d, self.cfg.optim.lr_d)):
            for g in opt.param_groups:
                g["lr"] = lr * scale
        return scale

    @torch.no_grad()
    def strip(self, path: Path, title: str = "") -> None:
        """Rows of input | output | target (pix2pix) or a | G(a) | F(G(a)) and b | F(b) | G(F(b)) (cyclegan)."""
        from torchvision.utils import save_image

        for net in self.nets.values():
            net.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            a, b = (to_float(x[:8].to(self.device)) for x in self.test)
            if self.paired:
                rows = [a, self.nets["G"](a), b]
            else:
                fb, fa = self.nets["G_AB"](a), self.nets["G_BA"](b)
                rows = [a, fb, self.nets["G_BA"](fb), b, fa, self.nets["G_AB"](fa)]
        for net in self.nets.values():
            net.train()
        grid = torch.stack(rows, 1).flatten(0, 1)  # per example: its row of columns
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path, nrow=len(rows), normalize=True, value_range=(-1, 1), padding=2)

    def state(self, step: int, epoch: int, elapsed: float) -> dict:
        from .loop import rng_state

        return {"format": 1, "gankit": __version__, "kind": "translation", "step": step, "epoch": epoch,
                "elapsed": elapsed, "nets": {k: v.state_dict() for k, v in self.nets.items()},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": rng_state(self.device),
                "gen": self.gen.get_state(), "pools": {k: p.state_dict() for k, p in self.pools.items()},
                "shape": list(self.A.shape[1:]), "config": self.cfg.to_dict()}

    def restore(self, ckpt: dict) -> tuple[int, int, float]:
        from .loop import set_rng_state

        for k, v in self.nets.items():
            v.load_state_dict(ckpt["nets"][k])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        set_rng_state(ckpt["rng"], self.device)
        self.gen.set_state(ckpt["gen"])
        for k, p in self.pools.items():
            p.load_state_dict(ckpt["pools"][k])
        return ckpt["step"], ckpt["epoch"], ckpt["elapsed"]


def run_translation(cfg: Config, run: Path, resume: bool = False, quiet: bool = False) -> dict:
    from .loop import StopFlag, due

    t = cfg.train
    tr = Trainer(cfg)  # data and networks first: a bad dataset leaves no empty run folder behind
    if not resume:
        create_run_dir(cfg, run)
    ckpt = load_latest(run, map_location=tr.device)[0] if resume else None
    step, epoch, elapsed = tr.restore(ckpt) if ckpt else (0, 0, 0.0)
    log = StatsWriter(run / "log.jsonl", resume_step=step if ckpt else 0)
    spe, B = tr.steps_per_epoch, t.batch_size
    budget_s = t.minutes * 60 if t.minutes else math.inf
    limits = [x for x in (t.max_steps, t.epochs * spe if t.epochs else None) if x]
    limit = min(limits) if limits else None
    progress = Progress(limit, initial=step, enabled=not quiet, budget_s=budget_s, elapsed=elapsed)
    t_start, stopped_by, t_plot = time.monotonic() - elapsed, None, time.monotonic()
    with StopFlag() as stop:
        while stopped_by is None:
            if t.epochs is not None and epoch >= t.epochs:
                stopped_by = "epochs"
                break
            perm = epoch_permutation(t.seed, epoch, tr.n)
            perm_b = perm if tr.paired else epoch_permutation(t.seed + 1, epoch, len(tr.B))[:tr.n]
            for i in range(step - epoch * spe, spe):
                frac = max(step / limit if limit else 0.0, elapsed / budget_s if budget_s < math.inf else 0.0)
                lr_scale = tr.set_lr(frac)
                a, b = tr.batch(perm[i * B:(i + 1) * B].to(tr.A.device), perm_b[i * B:(i + 1) * B].to(tr.B.device))
                stats = tr.step(a, b)
                step += 1
                elapsed = time.monotonic() - t_start
                if due(step, t.log_every or 1):
                    row = {"step": step, "epoch": epoch + 1, "time": round(elapsed, 3), "lr_scale": lr_scale}
                    row.update({k: float(v) for k, v in stats.items()})
                    if not all(math.isfinite(v) for v in row.values()):
                        stopped_by = "diverged"
                        break
                    log.write(row)
                    progress.update(step, epoch + 1, row)
                if due(step, t.checkpoint_every):
                    save_checkpoint(run, tr.state(step, epoch, elapsed), step, t.keep_checkpoints)
                if stop.raised:
                    stopped_by = "interrupt"
                elif t.max_steps is not None and step >= t.max_steps:
                    stopped_by = "max_steps"
                elif elapsed >= budget_s:
                    stopped_by = "minutes"
                if stopped_by:
                    break
            else:
                epoch += 1
                tr.strip(run / "samples" / f"epoch-{epoch:04d}.png")
                if time.monotonic() - t_plot > 30:
                    _plots(run, spe, tr.paired)
                    t_plot = time.monotonic()
                progress.message(f"epoch {epoch} done: step {step}, {elapsed:.0f} s")
    progress.close()
    if stopped_by != "diverged":
        save_checkpoint(run, tr.state(step, epoch, elapsed), step, t.keep_checkpoints)
    log.close()
    tr.strip(run / "samples" / "final.png")
    _plots(run, spe, tr.paired)
    write_report(run, str(tr.device))
    return {"run": str(run), "steps": step, "epochs": epoch, "seconds": round(elapsed, 1), "stopped_by": stopped_by,
            "warnings": 0}


def _plots(run: Path, spe: int, paired: bool) -> None:
    from ..observe.plots import plot_d_outputs

    rows = read_log(run / "log.jsonl")
    if rows:
        plot_losses(rows, spe, run / "losses.png")
        plot_d_outputs(rows, spe, run / "d_outputs.png", probabilities=paired)  # pix2pix: BCE; cyclegan: LSGAN


def load_translation_run(run_dir: str | Path, checkpoint: Optional[str] = None,
                         device: str = "cpu") -> tuple[dict, Config, dict]:
    from ..sampling import read_checkpoint

    cfg, ckpt, _ = read_checkpoint(run_dir, checkpoint, device)
    if ckpt.get("kind") != "translation":
        raise GankitError(f"'{run_dir}' is not an image-to-image run (pix2pix or cyclegan); use gankit sample")
    c, s = ckpt["shape"][0], ckpt["shape"][1]
    nets = build_translators(cfg, c, s)
    for k, v in nets.items():
        v.load_state_dict(ckpt["nets"][k])
        v.to(device).eval()
    return nets, cfg, ckpt
