"""What a tune leaves in its folder: trials.csv (and the table printed), best.yaml (the best trial's whole
config, for `gankit train --config best.yaml`), the plots of Optuna's matplotlib views (optimisation history,
parameter importances, intermediate values, one slice per parameter) and summary.html with them inlined."""
from __future__ import annotations

import csv
import html
import socket
import warnings
from pathlib import Path
from typing import Optional

import yaml

from ..config import build_config
from ..observe.plots import plt  # the Agg backend, set once for the package
from ..observe.report import STYLE, _data_uri
from .trial import TrialSpec

PLOTS = {"history.png": "plot_optimization_history", "importances.png": "plot_param_importances",
         "intermediate.png": "plot_intermediate_values", "slices.png": "plot_slice"}
KNOWN = ("run", "host", "steps", "seconds", "stopped_by", "error", "interrupted", "retry_of", "surplus")


def trial_rows(study) -> list[dict]:
    """One row per trial (those a worker started beyond the N are left out): number, state, value, the
    parameters, the judge's values, time and steps, the run folder and why it failed."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if a.get("surplus"):
            continue
        retry_of = a.get("retry_of", t.system_attrs.get("failed_trial"))
        note = a.get("error") or ("interrupted; queued again" if a.get("interrupted") else "") or (
            f"retry of {retry_of}" if retry_of is not None else "")
        trained = a.get("steps") is not None or bool(t.intermediate_values)  # one refused first made no folder
        if trained and a.get("run") and a.get("host") == socket.gethostname() and not Path(a["run"]).is_dir():
            note = "; ".join(filter(None, [note, "run folder deleted"]))  # another host's folders: not checked
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value, **t.params,
                     **{k: v for k, v in a.items() if k not in KNOWN},
                     "evaluations": len(t.intermediate_values), "seconds": a.get("seconds"), "steps": a.get("steps"),
                     "stopped_by": a.get("stopped_by"), "retry_of": retry_of, "host": a.get("host"),
                     "run": a.get("run"), "note": note})
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def _cell(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def format_trials(rows: list[dict], params: list[str], metric: str) -> str:
    """The printed table: trial, state, value, each parameter, seconds, a note (why it failed, a retry of)."""
    head = ["trial", "state", metric] + [p.rpartition(".")[2] for p in params] + ["s", "note"]
    body = [[_cell(r.get(k)) for k in ["trial", "state", "value", *params, "seconds"]] + [r["note"][:60]]
            for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join([*(x.rjust(w) for x, w in zip(line[:-1], widths)), line[-1]]).rstrip() for line in [head, *body]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def best_config(spec: TrialSpec, params: dict):
    """The whole config a trial trained with, without the tune's machine settings (folder, threads)."""
    over: dict = {}
    for key, v in params.items():
        section, _, name = key.partition(".")
        over.setdefault(section, {})[name] = v
    return build_config(spec.preset, overrides=[*spec.base, over, {"train": {"out": None, "threads": None}}])


def write_best(study, spec: TrialSpec, path: Path):
    """best.yaml of the best completed trial (None when no trial completed)."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    cfg = best_config(spec, best.params)
    head = (f"# gankit tune: best of the study's completed trials, trial {best.number} ({spec.metric} {best.value:.6g}; "
            f"run {best.user_attrs.get('run')}).\n# Train it with: gankit train --config {path.name}\n")
    path.write_text(head + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return best


def write_plots(study, folder: Path) -> dict[str, Path]:
    """Optuna's matplotlib views that apply (importances need 2 completed trials, ...), as PNGs."""
    import optuna.visualization.matplotlib as views

    written = {}
    for name, view in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # experimental views; tight_layout on slices
                ax = getattr(views, view)(study)
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
                fig.set_size_inches(max(6.4, fig.get_size_inches()[0]), 4.2)
                fig.tight_layout()
                fig.savefig(folder / name, dpi=90)
            written[name] = folder / name
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError):  # too few trials for this view
            pass
        finally:
            plt.close("all")
    return written


def write_html(folder: Path, title: str, settings: dict, rows: list[dict], best, plots: dict[str, Path]) -> Path:
    """summary.html: settings, the best trial and its config, the plots (base64), every trial."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows) + "</table>"
    info = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    best_html = "<p>no trial completed yet</p>"
    if best is not None:
        config = (folder / "best.yaml").read_text()
        best_html = (f"<p>trial {best.number}: <b>{best.value:.6g}</b>, {html.escape(str(best.params))}</p>"
                     f"<p>best.yaml (<code>gankit train --config best.yaml</code>):</p><pre>{html.escape(config)}</pre>")
    images = "".join(f'<img alt="{html.escape(n)}" src="{_data_uri(p)}">' for n, p in plots.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><table>{info}</table>"
            f"<h2>Best trial</h2>{best_html}<h2>Plots</h2><div class='grid'>{images}</div>"
            f"<h2>Trials</h2>{table}</body></html>")
    path = folder / "summary.html"
    path.write_text(page)
    return path


def summarize(study, spec: TrialSpec, settings: dict) -> tuple[str, Optional[Path]]:
    """Every file of the tune folder's summary; returns the printed table and best.yaml's path (if any)."""
    folder = Path(spec.out)
    rows = trial_rows(study)
    write_csv(rows, folder / "trials.csv")
    best = write_best(study, spec, folder / "best.yaml")
    plots = write_plots(study, folder)
    write_html(folder, f"gankit tune: {settings['study']}", settings, rows, best, plots)
    return format_trials(rows, [p.key for p in spec.space], spec.metric), folder / "best.yaml" if best else None
