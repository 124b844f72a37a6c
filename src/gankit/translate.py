"""Image-to-image helpers: offline demonstration datasets built from Fashion-MNIST, `gankit translate`,
and the scores of a translation run (L1 and SSIM on held-out pairs; cycle error and the judge's
target-domain accuracy)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .errors import GankitError

DEMOS = {"edges2fashion": "paired: Sobel edges (A) -> Fashion-MNIST item (B), side-by-side 32x64 PNGs",
         "tops2trousers": "unpaired: T-shirts/tops (A) <-> trousers (B), trainA/ trainB/ testA/ testB/"}


def sobel_edges(x: Tensor) -> Tensor:
    """[N,1,H,W] uint8 -> uint8 edge maps: Sobel gradient magnitude, scaled to each image's maximum."""
    f = x.float() / 255.0
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(f, kx, padding=1), F.conv2d(f, kx.transpose(2, 3), padding=1)
    mag = (gx ** 2 + gy ** 2).sqrt()
    mag = mag / mag.amax((2, 3), keepdim=True).clamp_min(1e-6)
    return (mag * 255).round().to(torch.uint8)


def _save(t: Tensor, path: Path) -> None:
    Image.fromarray(t.squeeze(0).numpy()).save(path)


def make_demo(name: str, out: str | Path, data_dir: Optional[str] = None, num: int = 5000,
              num_test: int = 500) -> Path:
    """Write one of DEMOS to `out` from the Fashion-MNIST training and test splits (32x32 by padding)."""
    from .metrics.judge import _splits

    if name not in DEMOS:
        raise GankitError(f"unknown demo '{name}'; available: {', '.join(DEMOS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GankitError(f"'{out}' already exists and is not empty; choose a new folder")
    train, test = _splits("fashion-mnist", data_dir)
    for split, data, n in (("train", train, num), ("test", test, num_test)):
        x = F.pad(data.x, (2, 2, 2, 2))  # 28 -> 32 px, black border like the background
        y = data.labels
        if name == "edges2fashion":
            folder = out / split
            folder.mkdir(parents=True, exist_ok=True)
            x = x[:n]
            pairs = torch.cat([sobel_edges(x), x], dim=3)  # [N,1,32,64] A | B
            for i, p in enumerate(pairs):
                _save(p, folder / f"{i:05d}.png")
        else:
            for dom, cls in (("A", 0), ("B", 1)):
                folder = out / f"{split}{dom}"
                folder.mkdir(parents=True, exist_ok=True)
                for i, p in enumerate(x[y == cls][:n]):
                    _save(p, folder / f"{i:05d}.png")
    meta = {"demo": name, "judge": "fashion-mnist", "size": 32}
    if name == "tops2trousers":
        meta.update(A_classes=[0], B_classes=[1])
    (out / "gankit-demo.json").write_text(json.dumps(meta))
    return out


def translate_folder(run_dir: str, input_dir: str, out_dir: str, direction: str = "AtoB",
                     checkpoint: Optional[str] = None, device: str = "cpu") -> int:
    """Translate every image of input_dir into out_dir (same names). Side-by-side A|B inputs give their
    A half (AtoB) or B half (BtoA). Returns the number written."""
    from .data import to_float, to_uint8
    from .data.folders import UNREADABLE, list_images, max_image_pixels, read_image, square, warn_skipped, why
    from .export.folder import load_exported_translators
    from .metrics.translation import load_translation_run
    from .models.translation import translate_batch

    # an exported folder (gankit export) or its Hub repo USER/REPO, else a run
    nets, cfg, ckpt = load_exported_translators(run_dir, checkpoint, device) or load_translation_run(run_dir, checkpoint, device)
    src, dst = Path(input_dir), Path(out_dir)
    files = _inputs(src, dst, list_images)
    c, s = ckpt["shape"][0], ckpt["shape"][1]
    targets = _targets(files, src, dst)
    bad, cap = [], max_image_pixels()
    for f, target in zip(files, targets):
        try:
            t, _ = read_image(f, "L" if c == 1 else "RGB", cap)
        except UNREADABLE as e:  # truncated, not an image, a decompression bomb: skipped and reported
            bad.append((f, why(e, cap)))
            continue
        h, w = t.shape[1:]
        if abs(w - 2 * h) <= 1:  # an A|B pair: take the input half
            t = t[:, :, : w // 2] if direction == "AtoB" else t[:, :, w // 2:]
        x = to_float(square(t, s)).unsqueeze(0)
        with torch.no_grad():
            img = to_uint8(translate_batch(nets, cfg, x.to(device), direction)[0].cpu())
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy() if c == 1 else img.permute(1, 2, 0).numpy()).save(target)
    warn_skipped(bad, src)
    return len(files) - len(bad)


def _inputs(src: Path, dst: Path, list_images) -> list[Path]:
    """The images to translate; refuse an output folder that is (or is inside) the input folder."""
    if not src.is_dir():
        raise GankitError(f"input folder '{src}' not found")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise GankitError(f"--out '{dst}' is the input folder or inside it; give another folder for the translations")
    if dst.exists() and not dst.is_dir():
        raise GankitError(f"--out '{dst}' is a file; give a folder for the translations")
    files = list_images(src)
    if not files:
        raise GankitError(f"'{src}' holds no images (.png, .jpg, .jpeg, .webp, .bmp)")
    return files


def _targets(files: list[Path], src: Path, dst: Path) -> list[Path]:
    """Output PNG paths, same names; inputs that share a stem (a.jpg, a.png) keep their extension in the
    name (a.jpg.png, a.png.png) so neither overwrites the other."""
    plain = [dst / f.relative_to(src).with_suffix(".png") for f in files]
    clash = {p for p in plain if plain.count(p) > 1}
    return [dst / f.relative_to(src).with_name(f.name + ".png") if p in clash else p for f, p in zip(files, plain)]
