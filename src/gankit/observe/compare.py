"""`gankit compare RUN_DIR...`: what differs between runs, how they ended, and their curves overlaid."""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from ..errors import GankitError  # noqa: E402
from ..metrics.history import read_history  # noqa: E402
from ..run import read_log  # noqa: E402

CURVES = {"loss_g": "G loss", "loss_d": "D loss", "d_real": "D(x)", "d_fake": "D(G(z))"}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def load_run(path: str | Path) -> dict:
    run = Path(path)
    if not (run / "config.yaml").is_file():
        raise GankitError(f"'{run}' is not a gankit run (no config.yaml); give run folders")
    log = read_log(run / "log.jsonl")
    history = read_history(run / "metrics.json")
    return {"name": run.name, "path": run, "config": _flatten(yaml.safe_load((run / "config.yaml").read_text())),
            "log": log, "history": history}


def summarize(r: dict) -> dict:
    log, hist = r["log"], r["history"]
    tail = log[-max(1, len(log) // 10):]  # the last 10% of the run, averaged
    row = {"steps": log[-1]["step"] if log else 0, "minutes": round(log[-1]["time"] / 60, 1) if log else 0.0}
    for k in ("loss_g", "loss_d"):
        vals = [x[k] for x in tail if x.get(k) is not None]
        row[f"final {k}"] = round(float(np.mean(vals)), 4) if vals else None
    if hist:
        split = hist[-1].get("real", {}).get("split")
        on = f" ({split})" if split and split not in ("train", "held-out") else ""  # scores against other images
        for k, v in hist[-1]["metrics"].items():
            if k in ("fid", "kid", "is", "modes", "precision", "recall"):
                row[f"last {k}{on}"] = round(v, 4)
        during = [h for h in hist if h.get("best")]
        if during:
            row.update({f"best {k}": round(v, 4) for k, v in during[-1]["metrics"].items() if k in ("fid", "kid", "is", "modes")})
    return row


def differences(runs: Sequence[dict]) -> list[str]:
    keys = sorted(set().union(*(r["config"] for r in runs)))
    return [k for k in keys if k != "train.out" and len({repr(r["config"].get(k)) for r in runs}) > 1]


def table(runs: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    diff = differences(runs)
    summaries = [summarize(r) for r in runs]
    cols = ["run"] + diff + sorted(set().union(*summaries), key=lambda c: (c not in ("steps", "minutes"), c))
    rows = [[r["name"]] + [str(r["config"].get(k)) for k in diff] + [str(s.get(c, "-")) for c in cols[1 + len(diff):]]
            for r, s in zip(runs, summaries)]
    return cols, rows


def format_table(cols: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _overlay_png(runs: Sequence[dict]) -> str:
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), dpi=90)
    for ax, (key, label) in zip(axes.flat, CURVES.items()):
        for r in runs:
            pts = [(x["step"], x[key]) for x in r["log"] if x.get(key) is not None]
            if pts:
                s, y = map(np.asarray, zip(*pts))
                w = max(1, len(y) // 100)
                ax.plot(s[w - 1:], np.convolve(y, np.ones(w) / w, mode="valid"), label=r["name"])
        ax.set_title(label)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def compare(paths: Sequence[str], out: str | Path = "compare.html") -> tuple[str, Path]:
    """Returns (the text table, the path of the comparison page)."""
    if len(paths) < 2:
        raise GankitError("compare needs at least two run folders")
    runs = [load_run(p) for p in paths]
    cols, rows = table(runs)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>gankit compare</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ddd;padding:3px 8px}img{max-width:100%}</style></head><body>"
            f"<h1>Comparison of {len(runs)} runs</h1><table><tr>{head}</tr>{body}</table>"
            f"<h2>Curves</h2><img alt='curves overlaid' src='data:image/png;base64,{_overlay_png(runs)}'>"
            "</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page)
    os.replace(tmp, out)
    return format_table(cols, rows), out
