"""Workers on several machines share one study through PostgreSQL: a real server, started by the test in a
temporary folder (Debian's postgresql package: initdb and pg_ctl under /usr/lib/postgresql/*/bin), reached over a
unix socket there; skipped, saying why, where it cannot start."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ..conftest import SUBPROCESS_ENV
from .conftest import TINY_ARGS, read_study, states


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner() -> list[str]:
    """The command prefix that runs the server as a non-root user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run the server as")
    if runuser is None:
        pytest.skip("running as root and runuser is missing to start the server as 'postgres'")
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); apt-get install postgresql")
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install 'gankit[postgres]'")
    bin_dir, owner = Path(bins[-1]).parent, _as_owner()
    root = Path(tempfile.mkdtemp(prefix="gankit-pg-"))  # not under pytest's tmp: the server's user must reach it
    if owner:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run([*owner, *map(str, cmd)], capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        made = run(bin_dir / "initdb", "-D", data, "-U", "gankit", "--auth=trust", "-E", "UTF8")
        if made.returncode:
            pytest.skip(f"initdb failed: {(made.stderr or made.stdout).strip().splitlines()[-1]}")
        opts = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
        started = run(bin_dir / "pg_ctl", "-D", data, "-o", opts, "-l", root / "log", "-w", "-t", "60", "start")
        if started.returncode:
            pytest.skip(f"the PostgreSQL server did not start: {(root / 'log').read_text()[-300:]}")
        yield f"postgresql+psycopg2://gankit@/postgres?host={root}&port={port}"
        run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_two_commands_sharing_a_postgres_study_run_n_trials_between_them(tmp_path, space, postgres_url):
    """`gankit tune ... --storage postgresql://...` started twice (as on two machines, each with its own folder):
    the N trials are shared out, none run twice."""
    argv = ["tune", "--preset", "toy", "--dataset", "ring", "--space", str(space), "--trials", "3", "--minutes", "1",
            "--storage", postgres_url, "--study", "shared", *TINY_ARGS]
    procs = [subprocess.Popen([sys.executable, "-m", "gankit", *argv, "--out", str(tmp_path / f"machine-{i}")],
                              env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = read_study(tmp_path, "shared", postgres_url)
    assert set(states(study)) <= {"complete", "pruned"} and sum(states(study).values()) == 3
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state.name == "FAIL" and "run" not in t.user_attrs for t in surplus)  # closed before training
    folders = sorted(p.name for i in range(2) for p in (tmp_path / f"machine-{i}").glob("trial-*"))
    assert folders == ["trial-0000", "trial-0001", "trial-0002"]  # each trial trained once, on one of the two
    assert all((tmp_path / f"machine-{i}" / "summary.html").is_file() for i in range(2))
