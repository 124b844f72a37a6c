"""The run folder: where a run lives on disk, and the only module that knows its layout.

    RUN/config.yaml          the resolved config, written before anything else
    RUN/log.jsonl            one JSON object per logged step
    RUN/checkpoints/         step-NNNNNN.pt (atomic, newest K kept) and best.pt
    RUN/samples/ RUN/*.png   sample grids and plots; RUN/report.html; RUN/metrics.json
    RUN/.lock                the PID of the process training in it

Checkpoints are written to a temporary file in the same folder, flushed, then renamed over their final
name, so a crash never leaves a half-written file under a checkpoint's name; they are loaded with
`torch.load(weights_only=True)`: tensors and plain data, never code.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from .config import Config, config_from_dict, load_yaml, save_config
from .errors import GankitError

STEP_RE = re.compile(r"^step-(\d+)\.pt$")
SYSTEM_DIRS = {Path(p) for p in ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/root", "/sbin", "/sys",
                                 "/usr", "/var", "/tmp", "/home", "/opt", "/srv", "/mnt", "/media")}


# ---------------------------------------------------------------- the folder
def default_run_dir(cfg: Config) -> Path:
    dataset = Path(cfg.data.dataset).name if not cfg.data.dataset.isidentifier() else cfg.data.dataset
    return Path("runs") / f"{cfg.preset or 'custom'}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_run(run: Path) -> bool:
    """A folder gankit trained in: its checkpoints/ folder and config.yaml are made first, before any other file."""
    return (Path(run) / "config.yaml").is_file() and (Path(run) / "checkpoints").is_dir()


def free_run_dir(cfg: Config, out: Optional[str | Path]) -> Path:
    """The folder a new run will use, resolved ('..' and links folded, so every check and the clean-up after
    a failed start see the folder the run really writes in). Refused: a link to nothing, a file, a system
    folder, a folder that holds a run, and a folder of other files (a new run would overwrite them)."""
    given = Path(out) if out else default_run_dir(cfg)
    for p in [given, *given.parents]:
        if p.is_symlink() and not p.exists():
            where = f"--out '{given}'" + (f": '{p}'" if p != given else "")
            try:
                p.resolve(strict=True)
            except FileNotFoundError:
                raise GankitError(f"{where} is a link to '{os.readlink(p)}', which does not exist; create that "
                                  "folder or give another --out") from None
            except (OSError, RuntimeError):
                raise GankitError(f"{where} is a loop of links; give another --out") from None
    run = given.resolve()
    if run.exists() and not run.is_dir():
        raise GankitError(f"--out '{given}' is a file, not a folder; give a new folder for the run")
    if run in SYSTEM_DIRS or run == Path.home().resolve():
        raise GankitError(f"--out '{given}' is a system or home folder; give a new folder such as runs/my-run")
    if list_step_checkpoints(run) or (run / "log.jsonl").exists() or is_run(run):
        raise GankitError(f"'{given}' already holds a run; continue it with `gankit train --resume {given}` "
                          "or choose another --out")
    if run.is_dir() and any(run.iterdir()):
        raise GankitError(f"--out '{given}' is a folder of other files, not a gankit run; give a new or empty "
                          "folder")
    return run


def create_run_dir(cfg: Config, run: Path) -> Path:
    """Create the run folder and write config.yaml before anything else."""
    (run / "samples").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    save_config(cfg, run / "config.yaml")
    return run


def read_config(run: Path) -> Config:
    """The resolved config a run was trained with (its config.yaml)."""
    if not Path(run).is_dir():
        raise GankitError(f"'{run}' is not a gankit run (no such folder); give the --out folder of a gankit train run")
    if not is_run(run):
        if (Path(run) / "model.safetensors").is_file() and (Path(run) / "config.json").is_file():
            raise GankitError(f"'{run}' is an exported generator (gankit export), not a run folder: it has no "
                              f"discriminator or log; draw samples with `gankit sample {run} --out S.npz` and score "
                              "them with `gankit eval --real DATASET --fake S.npz`, or give the run folder")
        raise GankitError(f"'{run}' is not a gankit run (no config.yaml); give the folder a run was saved in")
    return config_from_dict(load_yaml(Path(run) / "config.yaml"))


def cache_root() -> Path:
    """Where gankit keeps what it can reuse between runs (judges, reference statistics)."""
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit"))


# what may differ between a run's config and its checkpoints: how long and where it trains, not what
UNFINGERPRINTED = {"train": ("epochs", "minutes", "max_steps", "threads", "device", "log_every", "tensorboard", "out",
                             "checkpoint_every", "keep_checkpoints", "snapshot_minutes", "clock", "tracker",
                             "tracker_uri"),
                   "data": ("data_dir", "workers", "download")}


UNFINGERPRINTED_SECTIONS = ("preset", "sample")  # informational, and how a finished run is sampled (editable)


def fingerprint(cfg: Config | dict) -> str:
    """A short hash of everything that decides what a run trains (its config without budget and machine
    options): a checkpoint whose fingerprint differs from its run's config.yaml is not that run's."""
    values = cfg if isinstance(cfg, dict) else cfg.to_dict()
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items() if k not in UNFINGERPRINTED_SECTIONS}
    for section, keys in UNFINGERPRINTED.items():
        for key in keys:
            values.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fingerprints(run: Path, cfg: Optional[Config] = None) -> frozenset[str]:
    """The fingerprints a checkpoint of this run may carry: that of its config as this version of gankit reads
    it (defaults filled in), and that of its config.yaml as written, so a run saved by an older gankit, whose
    config.yaml lacks the keys added since, stays loadable and resumable."""
    written = load_yaml(Path(run) / "config.yaml")
    return frozenset({fingerprint(cfg if cfg is not None else config_from_dict(written)), fingerprint(written)})


def belongs(ckpt: dict, accepted: frozenset[str]) -> bool:
    """Was this checkpoint made by the run whose fingerprints are `accepted` (run_fingerprints)? Its stored
    fingerprint says so, or, for a checkpoint of an older gankit whose fingerprint left out or took in other
    keys, the config it carries, read by this version, has the run's fingerprint."""
    if ckpt.get("fingerprint") in (None, *accepted):
        return True
    try:
        return isinstance(ckpt.get("config"), dict) and fingerprint(config_from_dict(ckpt["config"])) in accepted
    except GankitError:  # a key this version does not know: not provably the same run
        return False


# ---------------------------------------------------------------- the lock
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunLock:
    """RUN/.lock holds the PID of the one process training in the run; a second is refused. A lock whose
    process is gone (killed) is taken over with a warning."""

    def __init__(self, run: Path):
        self.path, self.held = Path(run) / ".lock", False

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return self
        raise GankitError(f"could not lock '{self.path.parent}'; try again")

    def _take_over_if_stale(self) -> None:
        try:
            pid = int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            raise GankitError(f"'{self.path.parent}' is in use by another gankit process (PID {pid}); wait for it "
                              f"to finish or stop it, or train into another --out")
        warnings.warn(f"taking over the lock of '{self.path.parent}' left by process {pid or '?'}, which is gone",
                      stacklevel=3)
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------- the log
def read_log(path: Path) -> list[dict]:
    """All complete rows of a log.jsonl (a torn last line from a crash, or a row that is not an object, is
    skipped)."""
    rows = []
    if not Path(path).is_file():
        return rows
    with open(path, errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


class StatsWriter:
    """Appends rows to log.jsonl. On resume, rows past the checkpoint's step are dropped first, so the log
    reads as if the run had never stopped."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is not None:
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.path)
        self._f = open(self.path, "a", buffering=1)

    def write(self, row: dict) -> None:
        self._f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[dict]:
        return iter(read_log(self.path))


class NoLog:
    """What processes other than rank 0 write: nothing."""

    def write(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- checkpoints on disk
def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


@contextlib.contextmanager
def deferred_interrupts():
    """Hold SIGINT/SIGTERM until the block is done, then deliver them: a Ctrl-C during a checkpoint write
    (which torch.save would turn into a RuntimeError halfway through the file) comes after the write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list = []
    old = {sig: signal.signal(sig, lambda signum, frame: held.append((signum, frame)))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for signum, frame in held:
            handler = old[signum]
            if callable(handler):
                handler(signum, frame)  # Python's default for SIGINT raises KeyboardInterrupt here
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def disk_error(e: OSError) -> str:
    """One line for a failed write: what, where, the free space there, and what to do."""
    where = Path(e.filename) if e.filename else None
    free = _free_space(where.parent if where is not None else Path("."))
    return (f"could not write '{where}' ({e.strerror or e}; {free}); free some space or fix the folder's "
            "permissions; a run continues with gankit train --resume RUN")


def _free_space(folder: Path) -> str:
    try:
        st = os.statvfs(folder)
        return f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file, fsync, then os.replace: readers see the old file or the new one. A full
    disk or a read-only folder is one clear error; the partial temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with deferred_interrupts():
            try:
                with open(tmp, "wb") as f:
                    torch.save(obj, f)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)  # never leave a partial file behind
                raise
            os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:200]
        raise GankitError(f"could not write '{path}' ({reason}; {_free_space(path.parent)}); the previous "
                          "checkpoint is intact: free some space or fix the folder's permissions, then continue "
                          "with gankit train --resume") from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def list_step_checkpoints(run: Path) -> list[Path]:
    """Step checkpoints of a run, newest (highest step) first."""
    d = checkpoint_dir(run)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := STEP_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(run: Path, state: dict, step: int, keep: int) -> Path:
    """Write checkpoints/step-NNNNNN.pt and delete all but the newest `keep` step checkpoints."""
    path = checkpoint_dir(run) / f"step-{step:06d}.pt"
    atomic_save(state, path)
    for old in list_step_checkpoints(run)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_file(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load one checkpoint without running code. Raises ValueError if it is damaged."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, unsupported global...
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("config"), dict) or "step" not in obj:
        raise ValueError("not a gankit checkpoint")
    return obj


def resolve_checkpoint(run: Path, name: Optional[str] = None) -> Path:
    """A named checkpoint ('step-000500', 'step-000500.pt', 'best', or a path) or, if None, the newest."""
    if name is None:
        found = list_step_checkpoints(run)
        if not found:
            raise GankitError(f"run '{run}' has no checkpoints; train it first (gankit train --out {run})")
        return found[0]
    for c in (Path(name), checkpoint_dir(run) / name, checkpoint_dir(run) / f"{name}.pt"):
        if c.is_file():
            return c
    avail = ", ".join(p.stem for p in list_step_checkpoints(run)) or "none"
    raise GankitError(f"checkpoint '{name}' not found in '{run}'; available: {avail}")


def load_latest(run: Path, map_location: str | torch.device = "cpu", expected: Optional[frozenset[str]] = None
                ) -> tuple[Optional[dict], Optional[Path]]:
    """Newest loadable step checkpoint (of the run whose fingerprint is one of `expected`, when given, see
    run_fingerprints); damaged or foreign ones are reported and skipped (never deleted)."""
    for path in list_step_checkpoints(run):
        try:
            ckpt = load_file(path, map_location)
        except ValueError as e:
            warnings.warn(f"checkpoint '{path.name}' is damaged ({e}); falling back to the previous one",
                          stacklevel=2)
            continue
        if expected is None or belongs(ckpt, expected):
            return ckpt, path
        warnings.warn(f"checkpoint '{path.name}' was not made with this run's config.yaml (another run's file, "
                      "or config.yaml was edited); falling back to the previous one", stacklevel=2)
    return None, None


def read_checkpoint(run_dir: str | Path, checkpoint: Optional[str] = None,
                    device: str | torch.device = "cpu") -> tuple[Config, dict, Path]:
    """(config, checkpoint dict, its path) of a run's newest (or named) checkpoint."""
    run = Path(run_dir)
    if not run.is_dir():
        raise GankitError(f"run folder '{run}' does not exist; give the --out folder of a gankit train run")
    path = resolve_checkpoint(run, checkpoint)
    try:
        ckpt = load_file(path, map_location=device)
    except ValueError as e:
        raise GankitError(f"checkpoint '{path}' is damaged ({e}); pick another with --checkpoint") from None
    if is_run(run) and not belongs(ckpt, run_fingerprints(run)):
        raise GankitError(f"checkpoint '{path}' does not belong to the run in '{run}' (its config differs from "
                          "config.yaml: another run's file, or an edited config.yaml); pick a checkpoint of this run "
                          "with --checkpoint, or restore config.yaml")
    return config_from_dict(ckpt["config"]), ckpt, path
