"""report.html: one self-contained page per run (opens from disk, no network).

Config, hardware, timings, the curves (losses, D outputs, gradient norms, overfitting, metrics), the
fixed-z grids behind a slider (at most artifacts.REPORT_FRAME_BYTES of them: the page stays small), D's
overfitting measures, the diagnostics timeline and the best checkpoint. Images are embedded as base64;
the only script is the slider's few lines.
"""
from __future__ import annotations

import base64
import html
import json
import os
import platform
from pathlib import Path
from statistics import median
from typing import Optional

import torch
import yaml

from ..config import TRANSLATION_MODELS
from ..metrics.history import read_history
from ..run import read_log
from .artifacts import pick_frames, run_grids, step_of
from .diagnostics import overfit_summary

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:12px}.warn{color:#a40}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto;max-height:360px}"""

SLIDER_JS = """const frames=JSON.parse(document.getElementById('frames').textContent);
const img=document.getElementById('frame'),label=document.getElementById('frame-label'),
slider=document.getElementById('slider');
function show(i){img.src=frames[i].src;label.textContent=frames[i].name;}
slider.addEventListener('input',e=>show(+e.target.value));show(frames.length-1);"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _img(path: Path, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{_data_uri(path)}">' if path.is_file() else ""


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _hardware(device: str) -> list[tuple[str, object]]:
    rows = [("device", device), ("platform", platform.platform()), ("python", platform.python_version()),
            ("torch", torch.__version__), ("CPU threads", torch.get_num_threads()), ("CPU cores", os.cpu_count())]
    if device.startswith("cuda") and torch.cuda.is_available():
        rows.append(("GPU", torch.cuda.get_device_name(0)))
    return rows


def _timings(log: list[dict]) -> list[tuple[str, object]]:
    if not log:
        return [("steps", 0)]
    speeds = [r["img_per_s"] for r in log if r.get("img_per_s")]
    return [("steps", log[-1]["step"]), ("epoch", log[-1]["epoch"]), ("training time", f"{log[-1]['time']:.0f} s"),
            ("median images/s", f"{median(speeds):.0f}" if speeds else "-")]


def _diagnostics(run: Path) -> str:
    path = run / "diagnostics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    if not rows:
        return "<p>No warnings: no discriminator overpowering, vanishing gradient, mode collapse or divergence seen.</p>"
    body = "".join(f"<tr><td>{r.get('step', '')}</td><td>{html.escape(r['kind'])}</td>"
                   f"<td class='warn'>{html.escape(r['message'])}</td></tr>" for r in rows)
    return f"<table><tr><th>step</th><th>kind</th><th>message</th></tr>{body}</table>"


def _best(run: Path) -> str:
    history = read_history(run / "metrics.json")
    best = [h for h in history if h.get("best")]
    rows: list[tuple[str, object]] = []
    if best:
        b = best[-1]
        rows += [("best checkpoint", "checkpoints/best.pt"), ("at step", b["step"])]
        rows += [(k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in b["metrics"].items()]
    after = [h for h in history if not h.get("during_training")]
    if after:
        split = after[-1].get("real", {}).get("split")
        against = f" (against {split} images)" if split and split != "train" else ""
        rows += [(f"gankit eval {k}{against}", f"{v:.4g}" if isinstance(v, float) else v)
                 for k, v in after[-1]["metrics"].items()]
    return _table(rows) if rows else "<p>No evaluation yet (use --eval-every N or gankit eval).</p>"


def _frame_name(path: Path, batch: Optional[int]) -> str:
    """'step 1,234 (78,976 images)' for a step grid; 'epoch 3', 'final' for the others."""
    step = step_of(path)
    if step is None:
        return path.stem.replace("-", " ")
    return f"step {step:,}" + (f" ({step * batch:,} images)" if batch else "")


def _overfitting(log: list[dict], config: dict) -> str:
    """The last measure of D's accuracy on training and held-out images, and what it means."""
    last = next((r for r in reversed(log) if "d_acc_train" in r), None)
    if last is None and (config.get("model") or {}).get("name") in TRANSLATION_MODELS:
        return "<p>Not measured for image-to-image runs: see their held-out L1 and SSIM (gankit eval).</p>"
    if last is None:
        return "<p>Not measured yet (every train.sample_every_images images).</p>"
    held = ("" if "d_acc_heldout" in last else " No held-out images: hold out part of the training set with "
            "<code>--set data.holdout=0.1</code>, or give an image folder a <code>test/</code> subfolder.")
    fake = f" It calls {last['d_acc_fake']:.0%} of fresh fakes fake." if "d_acc_fake" in last else ""
    return f"<p>At step {last['step']:,}{html.escape(overfit_summary(last))}.{fake}{held}</p>"


def write_report(run: Path, device: str, title: Optional[str] = None) -> Path:
    """(Re)write run/report.html from what the run folder holds now."""
    run = Path(run)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    log = read_log(run / "log.jsonl")
    grids = run_grids(run)
    if (run / "samples" / "final.png").is_file():
        grids.append(run / "samples" / "final.png")
    batch = (config.get("train") or {}).get("batch_size")
    frames = [{"name": _frame_name(p, batch), "src": _data_uri(p)} for p in pick_frames(grids)]
    slider = ("<p>No sample grid yet.</p>" if not frames else
              f'<input id="slider" type="range" min="0" max="{len(frames) - 1}" value="{len(frames) - 1}" '
              f'style="width:60%"> <span id="frame-label"></span><br><img id="frame" alt="samples of this epoch">'
              f'<script id="frames" type="application/json">{json.dumps(frames)}</script><script>{SLIDER_JS}</script>')
    curves = "".join(_img(run / f, f) for f in ("losses.png", "d_outputs.png", "grad_norms.png", "overfitting.png",
                                                 "schedules.png", "metrics.png"))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title or run.name)} - gankit report</title><style>{STYLE}</style></head><body>
<h1>{html.escape(title or run.name)}</h1><p>gankit run report, rewritten as the run trains.</p>
<h2>Samples through training (the same z, or the same test inputs for image-to-image)</h2>{slider}
<h2>Curves</h2><div class="grid">{curves or '<p>No curves yet.</p>'}</div>
<h2>Overfitting</h2>{_overfitting(log, config)}
<h2>Diagnostics</h2>{_diagnostics(run)}
<h2>Best checkpoint and metrics</h2>{_best(run)}
<h2>Timings</h2>{_table(_timings(log))}
<h2>Hardware</h2>{_table(_hardware(device))}
<h2>Config</h2><pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>
</body></html>"""
    tmp = run / ".report.html.tmp"
    tmp.write_text(page)
    os.replace(tmp, run / "report.html")
    return run / "report.html"
