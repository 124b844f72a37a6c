"""Scores of an image-to-image run on held-out images: Pix2Pix's L1 and SSIM of G(A) against B; CycleGAN's
cycle reconstruction error and, for datasets with a judge and known domain classes (the tops2trousers
demo), the share of translated images the judge puts in the target domain. The same scores serve
`gankit eval RUN` and --eval-every during training."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..data import to_float, to_uint8
from ..data.paired import load_translation_data
from ..errors import GankitError
from ..models.translation import TRANSLATORS, build_translators, translate_batch
from ..run import read_checkpoint
from .history import append_history


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM (Wang et al. 2004) of [N,C,H,W] images: 11x11 Gaussian window, sigma 1.5, K1 0.01,
    K2 0.03, 'valid' borders; per image, averaged over channels and positions. Returns [N]."""
    c = x.shape[1]
    g = torch.exp(-((torch.arange(11, dtype=x.dtype) - 5) ** 2) / (2 * 1.5 ** 2))
    g = (g / g.sum()).to(x.device)
    win = (g[:, None] * g[None, :]).expand(c, 1, 11, 11)
    blur = lambda t: F.conv2d(t, win, groups=c)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return m.flatten(1).mean(1)


def _chunks(net, x: Tensor, device) -> Tensor:
    """net over uint8 images x in batches of 256, in [-1, 1]."""
    return torch.cat([net(to_float(x[i:i + 256].to(device))) for i in range(0, len(x), 256)])


@torch.no_grad()
def score_translation(translate, cfg, A: Tensor, B: Tensor, device) -> tuple[dict, list[str]]:
    """(metrics, notes) of translate(x, direction) on held-out uint8 images A, B."""
    to01 = lambda t: t.float().div(255.0).to(device)  # noqa: E731
    if TRANSLATORS.get(cfg.model.name).paired:
        out = _chunks(lambda x: translate(x, "AtoB"), A, device).add(1).div(2).clamp(0, 1)
        return {"l1": float((out - to01(B)).abs().mean()), "ssim": float(ssim(out, to01(B)).mean())}, []
    fb = _chunks(lambda x: translate(x, "AtoB"), A, device)
    fa = _chunks(lambda x: translate(x, "BtoA"), B, device)
    m = {"cycle_l1_a": float((translate(fb, "BtoA") - to_float(A.to(device))).abs().mean() / 2),  # [0, 1] units
         "cycle_l1_b": float((translate(fa, "AtoB") - to_float(B.to(device))).abs().mean() / 2)}
    notes: list[str] = []
    meta_file = Path(cfg.data.dataset) / "gankit-demo.json"
    if meta_file.is_file():
        from .features import judge_extractor

        meta = json.loads(meta_file.read_text())
        try:
            ex = judge_extractor(meta["judge"], None, device)
        except GankitError as e:  # no judge trained yet: the other scores still count
            return m, [f"no judge-based domain accuracy: {e}"]
        for name, fake, classes in (("a_to_b", fb, meta["B_classes"]), ("b_to_a", fa, meta["A_classes"])):
            _, probs = ex.features(to_uint8(fake.cpu()))
            m[f"judge_target_{name}"] = float(np.isin(np.asarray(probs).argmax(1), classes).mean())
    return m, notes


class HeldOutScores:
    """--eval-every for image-to-image runs: the held-out scores of the networks being trained (their EMA
    when kept). The first metric decides the best checkpoint (L1 or cycle error: lower is better)."""
    num, info = 0, {}

    def __init__(self, cfg, device):
        self.cfg, self.device, self.best = cfg, device, None
        try:
            self.A, self.B = load_translation_data(cfg, "test", TRANSLATORS.get(cfg.model.name).paired)
        except GankitError as e:
            raise GankitError(f"--eval-every needs held-out images ({e})") from None
        self.num = len(self.A)

    def __call__(self, recipe) -> dict:
        nets = [recipe.sampling_net(k) for k in recipe.nets]
        modes = [n.training for n in nets]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # Pix2Pix keeps dropout on at test time
            values, _ = score_translation(recipe.translate, self.cfg, self.A, self.B, self.device)
        for n, mode in zip(nets, modes):
            n.train(mode)
        return values

    def is_best(self, values: dict) -> bool:
        first = next(iter(values.values()))
        if self.best is None or first < self.best:
            self.best = first
            return True
        return False


@torch.no_grad()
def evaluate_translation(run_dir: str, checkpoint: Optional[str] = None, device: str = "cpu", seed: int = 0,
                         record: bool = True) -> dict:
    """The held-out scores of a run's checkpoint, appended to its metrics.json."""
    t0 = time.time()
    nets, cfg, ckpt = load_translation_run(run_dir, checkpoint, device)
    try:
        A, B = load_translation_data(cfg, "test", TRANSLATORS.get(cfg.model.name).paired)
    except GankitError as e:
        raise GankitError(f"no held-out images to score ({e})") from None
    torch.manual_seed(seed)  # Pix2Pix keeps dropout on at test time
    m, notes = score_translation(lambda x, d: translate_batch(nets, cfg, x, d), cfg, A, B, device)
    n = {"pairs": len(A)} if TRANSLATORS.get(cfg.model.name).paired else {"A": len(A), "B": len(B)}
    result = {"metrics": m, "notes": notes, "step": int(ckpt["step"]), "split": "test", "n": n,
              "seconds": round(time.time() - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if record:
        append_history(Path(run_dir) / "metrics.json", result)
    return result


def load_translation_run(run_dir: str | Path, checkpoint: Optional[str] = None,
                         device: str = "cpu") -> tuple[dict, Config, dict]:
    """The translation networks of a run (EMA weights where the run kept them), in eval mode."""
    cfg, ckpt, _ = read_checkpoint(run_dir, checkpoint, device)
    if not cfg.is_translation:
        raise GankitError(f"'{run_dir}' is not an image-to-image run (pix2pix or cyclegan); use gankit sample")
    c, s = ckpt["shape"][0], ckpt["shape"][1]
    nets = build_translators(cfg, c, s)
    for k, v in nets.items():
        v.load_state_dict(ckpt.get(f"{k}_ema") or ckpt[k])
        v.to(device).eval()
    return nets, cfg, ckpt
