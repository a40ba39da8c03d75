"""Training on several processes and machines, as torchrun starts them: who this process is, and what the
processes agree on.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK. Every rank draws the same shuffled order of the data
(the samplers are seeded from (seed, epoch)), cuts it into batches of ``training.batch_size`` and takes
its share of each, so a run on N processes takes the same steps on the same global batches as a run on
one. DistributedDataParallel averages the gradients; losses and validation outputs are gathered so every
rank computes the same metrics. Only rank 0 touches the run folder: on a resume it reads the checkpoint
and sends it to the others, so the other machines need the data but not the run.
"""

from __future__ import annotations

import datetime
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from graphcompiler import GraphError

T = TypeVar("T")

TIMEOUT = datetime.timedelta(minutes=10)
"""How long a rank waits for the others (a slow first epoch on a cold cache) before it gives up."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run folder and reports progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there are other processes to agree with."""
        return self.size > 1

    def share(self, batch: list[int]) -> list[int]:
        """This rank's share of one global batch: every size-th index from its rank.

        A last batch too short for every rank to get as many is filled up from its own start (as torch's
        DistributedSampler pads), because every rank must take every step.
        """
        if not self.active:
            return batch
        per_rank = -(-len(batch) // self.size)
        padded = list(itertools.islice(itertools.cycle(batch), per_rank * self.size))
        return padded[self.rank:: self.size]

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is True on any: one rank's stop request stops all of them together."""
        if not self.active:
            return flag
        value = torch.tensor([float(flag)], device=_device_of_group())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if not self.active:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=_device_of_group())
        dist.all_reduce(total)
        return total.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (any picklable object), in rank order."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def on_main(self, work: Callable[[], T]) -> T:
        """What ``work`` returns on rank 0, which alone does it, on every rank; its GraphError stops every rank."""
        result, problem = None, None
        if self.main:
            try:
                result = work()
            except GraphError as exc:
                if not self.active:
                    raise
                problem = exc
        result, message = self.from_main((result, None if problem is None else str(problem)))
        if problem is not None:
            raise problem
        if message is not None:
            raise GraphError(f"rank 0: {message}")
        return result

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (the others pass None)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def world() -> World:
    """This process's place: from torchrun's environment, or a single process."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def join(here: World) -> None:
    """Join the other processes: NCCL where each has a GPU, gloo on CPUs."""
    if here.active and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(here.local_rank)
        dist.init_process_group(backend, timeout=TIMEOUT)


def leave() -> None:
    """Leave the process group (at the end of a run, however it ended)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _device_of_group() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
