"""What the tune tests share: a space file, the options that make a trial a few seconds of toy training, and
the study read back from its storage."""
from __future__ import annotations

from pathlib import Path

import pytest

from gankit.config import parse_override

SPACE = "optim.lr_g: {log_uniform: [1.0e-4, 1.0e-2]}\noptim.lr_d: {log_uniform: [1.0e-4, 1.0e-2]}\n"
# toy on ring, tiny nets, 5 steps per epoch (toy_size / batch), 20 steps, evaluated every epoch, one thread
TINY = ["data.toy_size=640", "train.batch_size=128", "train.max_steps=20", "train.eval_num=500",
        "model.g_hidden=[32, 32]", "model.d_hidden=[32, 32]", "train.num_samples=200", "train.threads=1"]
TINY_ARGS = [x for s in TINY for x in ("--set", s)]


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def tune_tiny(space: Path, out: Path, trials: int, **kw) -> dict:
    """gankit.tune.tune of the toy preset on ring with TINY trials (a minute each at most)."""
    from gankit.tune import tune

    kw.setdefault("extra", [parse_override(s) for s in TINY])
    return tune("toy", space, trials, kw.pop("minutes", 1.0), dataset="ring", out=out, log=lambda m: None, **kw)


def read_study(out: Path, name: str | None = None, url: str | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name or out.name, storage=url or f"sqlite:///{out / 'study.db'}")


def states(study) -> dict[str, int]:
    """Trial count by state name (complete, pruned, fail, running, waiting), without the surplus asks: when two
    workers ask for the last of the N trials at once, the later ask is closed untrained (FAIL, user attr
    'surplus'), as trials.csv and the summary leave it out."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("surplus"):
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out
