"""torchrun with 2 processes on CPU (gloo): the same weights as one process with the same global batch,
and an exact resume."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from gankit.run import list_step_checkpoints, load_file

ARGS = ["--dataset", "ring", "--set", "data.toy_size=2048", "--set", "model.g_batchnorm=false",
        "--set", "model.g_hidden=[32,32]", "--set", "model.d_hidden=[32,32]", "--batch-size", "64",
        "--checkpoint-every", "10", "--device", "cpu", "--threads", "1", "--quiet"]


def torchrun(nproc: int) -> list[str]:
    # --tee 2: every line a process writes to stderr comes prefixed with its rank ([default1]:...)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "--tee", "2",
            "-m", "gankit"]


def gankit(args, nproc=1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    head = [sys.executable, "-m", "gankit"] if nproc == 1 else torchrun(nproc)
    r = subprocess.run(head + args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, failure(r)
    return r


def failure(r: subprocess.CompletedProcess) -> str:
    """What a failed run said: the command, how it ended, and the head and tail of its stderr (each process's
    lines prefixed with its rank, [default1]:..., then torchrun's summary naming the process that failed
    first and how, e.g. exitcode -6 (SIGABRT))."""
    how = f"exit status {r.returncode}"
    if r.returncode < 0:
        how = f"killed by {signal.Signals(-r.returncode).name}"
    err = r.stderr if len(r.stderr) <= 8000 else r.stderr[:2000] + "\n[...]\n" + r.stderr[-6000:]
    return (f"\n$ {' '.join(r.args)}\n{how}\n--- stderr ---\n{err}\n--- stdout (tail) ---\n"
            f"{r.stdout[-1000:]}")


def newest(run: Path) -> dict:
    return load_file(list_step_checkpoints(run)[0])


def test_two_processes_match_one_and_resume_exactly(tmp_path):
    gankit(["train", *ARGS, "--max-steps", "20", "--out", str(tmp_path / "one")])
    gankit(["train", *ARGS, "--max-steps", "20", "--out", str(tmp_path / "two")], nproc=2)
    gankit(["train", *ARGS, "--max-steps", "10", "--out", str(tmp_path / "resumed")], nproc=2)
    gankit(["train", "--resume", str(tmp_path / "resumed"), "--max-steps", "20"], nproc=2)
    one, two, resumed = (newest(tmp_path / n) for n in ("one", "two", "resumed"))
    assert one["step"] == two["step"] == resumed["step"] == 20
    assert len(two["rng_ranks"]) == 2  # each process's RNG is saved
    for net in ("G", "D"):
        for k in one[net]:
            # all-reduced gradients vs one batch: the same up to float32 rounding
            torch.testing.assert_close(two[net][k], one[net][k], atol=1e-5, rtol=1e-4)
            assert torch.equal(resumed[net][k], two[net][k]), (net, k)
    # only rank 0 wrote: one log row per step, one set of grids
    rows = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert len(rows) == 20
    assert (tmp_path / "two" / "samples" / "final.png").is_file()


def test_batch_must_split_evenly_over_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(torchrun(2) + ["train", *ARGS, "--batch-size", "63", "--max-steps", "2", "--out",
                               str(tmp_path / "odd")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0, r.stdout[-1000:]
    assert "must divide evenly over the 2 processes" in r.stderr, failure(r)


def test_each_process_takes_its_share_of_the_global_batch(tmp_path):
    from gankit.config import build_config
    from gankit.training.dist import Dist
    from gankit.training.gan import GanRecipe

    cfg = build_config("toy", overrides=[{"data": {"toy_size": 512}, "train": {"batch_size": 8}}])
    z_all = GanRecipe(cfg).batch_z()
    halves = []
    for rank in (0, 1):
        recipe = GanRecipe(cfg)
        recipe.dist = Dist(rank, 2, 0)  # this process's place among two
        assert recipe.local_batch == 4
        halves.append(recipe.batch_z())
    assert torch.equal(torch.cat(halves), z_all)  # the two processes' codes are one process's codes
