"""report.html: self-contained, and rendered by a headless browser."""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit

from ..conftest import tiny_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    cfg = tiny_config("toy", tmp / "run", dataset="ring", train={"max_steps": None, "epochs": 3,
                                                                 "sample_every_images": 256},  # a grid per epoch
                      diagnose={"window": 5, "grad_g_floor": 1e9})  # provoke a warning for the timeline
    return Path(gankit.train(cfg, quiet=True)["run"])


def test_report_is_self_contained(report_run):
    page = (report_run / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from a network
    # 3 grids + final in the slider, + curves: losses, D outputs, gradient norms, overfitting
    assert page.count("data:image/png;base64,") == 4 + 4
    assert "vanishing generator gradient" in page and "dataset: ring" in page


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_headless_chromium(report_run, tmp_path):
    shot = tmp_path / "shot.png"
    r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                        "--v=0", "--window-size=1200,1600", f"--screenshot={shot}",
                        (report_run / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in r.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (1600, 1200)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100  # charts and grids, not a blank page
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
                          (report_run / "report.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    # the slider's script ran: the frame image got its source and label
    assert re.search(r'id="frame"[^>]*src="data:image/png', dom) or re.search(r'src="data:image/png[^"]*"[^>]*id="frame"', dom)
    assert '<span id="frame-label">final</span>' in dom
