"""Several processes through PyTorch's own engine: `torchrun --nproc_per_node K -m gankit train ...`.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; gankit joins the process group
(NCCL on CUDA GPUs, gloo on CPU), wraps G and D in DistributedDataParallel and splits every global batch
(train.batch_size) into equal shares, one per process: the same data order and the same latent codes as a
single process with that batch, so the result matches it up to floating-point rounding (without BatchNorm
statistics over the whole batch; train.sync_batchnorm on GPUs restores those). Only rank 0 writes logs,
samples, plots and checkpoints; every rank keeps its own RNG stream (seeded seed + rank) for dropout and
augmentation, saved in the checkpoint for exact resume.
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import GankitError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean of each scalar over the processes (one collective for all of them)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        stacked = torch.stack([values[k].float().reshape(()) for k in keys])
        dist.all_reduce(stacked)
        return dict(zip(keys, stacked / self.world))

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when it is true on one (stopping together, never in a collective)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def gather(self, obj: Any) -> list:
        if not self.active:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Dist()


def from_env(device: str) -> Dist:
    """Join the process group torchrun describes (no-op for a plain `gankit train`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_available():
        raise GankitError("this PyTorch build has no torch.distributed; run without torchrun")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return Dist(rank, world, local_rank)


LEAVE_TIMEOUT = datetime.timedelta(minutes=10)  # the most a process waits at the end for the others


def shutdown(d: Dist) -> None:
    """Leave the process group, every process together.

    A barrier first: rank 0 still writes samples and plots after the last collective, and a process that
    ran straight to the end of the interpreter could abort ("terminate called without an active exception"):
    destroy_process_group does not stop gloo's worker threads (DistributedDataParallel still holds the
    group), and a worker still releasing the tensors of the last collective needs the GIL, which a
    finalizing interpreter no longer hands out (the thread is unwound inside a noexcept destructor).
    Waiting at the barrier gives those threads time to finish. When an exception is on its way out the
    barrier is skipped: another process may be inside a collective, and torchrun stops the group anyway."""
    if not (d.active and dist.is_initialized()):
        return
    if sys.exc_info()[0] is None:
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=LEAVE_TIMEOUT)  # names a process that never arrives
            else:
                dist.barrier(device_ids=[d.local_rank])
        except RuntimeError as e:  # DistBackendError included: leave anyway, saying why
            print(f"gankit: warning: process {d.rank} left without the others: {e}", file=sys.stderr)
    dist.destroy_process_group()
