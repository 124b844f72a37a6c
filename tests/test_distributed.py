"""torchrun with 2 processes on CPU (gloo): the same weights as one process with the same global batch,
and an exact resume."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from gankit.training.checkpoint import list_step_checkpoints, load_file

ARGS = ["--dataset", "ring", "--set", "data.toy_size=2048", "--set", "model.g_batchnorm=false",
        "--set", "model.g_hidden=[32,32]", "--set", "model.d_hidden=[32,32]", "--batch-size", "64",
        "--checkpoint-every", "10", "--device", "cpu", "--threads", "1", "--quiet"]


def gankit(args, nproc=1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    head = [sys.executable, "-m", "gankit"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "gankit"]
    r = subprocess.run(head + args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


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
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gankit"]
    r = subprocess.run(head + ["train", *ARGS, "--batch-size", "63", "--max-steps", "2", "--out",
                               str(tmp_path / "odd")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "must divide evenly over the 2 processes" in r.stderr


def test_each_process_takes_its_share_of_the_global_batch(tmp_path):
    import dataclasses

    from gankit.config import build_config
    from gankit.training.dist import Dist
    from gankit.training.setup import build

    cfg = build_config("toy", overrides=[{"data": {"toy_size": 512}, "train": {"batch_size": 8}}])
    one = build(cfg)
    z_all = one.batch_z()
    halves = []
    for rank in (0, 1):
        s = build(cfg)
        s = dataclasses.replace(s, dist=Dist(rank, 2, 0))
        assert s.local_batch == 4
        halves.append(s.batch_z())
    assert torch.equal(torch.cat(halves), z_all)  # the two processes' codes are one process's codes
