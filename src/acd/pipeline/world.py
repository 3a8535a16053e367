"""The data-parallel processes a launcher started (torchrun / accelerate launch): head training, generation, lm-eval."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from acd.core.loading import default_device

T = TypeVar("T")
# The main process alone scores generations and writes outputs while the others wait at the next collective:
# that can outlast the backends' default timeouts (10-30 min) on a large run.
TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for alone)."""
        if self.size > 1:
            dist.barrier()

    def gather(self, value: T) -> list[T]:
        """Every process's ``value``, in rank order, on every process (alone: ``[value]``)."""
        if self.size == 1:
            return [value]
        values: list[T] = [None] * self.size  # type: ignore[list-item]
        dist.all_gather_object(values, value)
        return values


def init_world(device: str | None = None) -> World:
    """Join the process group that torchrun / accelerate launch describe in the environment, if any."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=device or default_device())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    if cuda:
        torch.cuda.set_device(local_rank)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=f"cuda:{local_rank}" if cuda else "cpu")
