"""The data-parallel processes a launcher started (torchrun / accelerate launch): head training, generation, lm-eval."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from acd.core.loading import default_device
from acd.errors import UsageError

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


def launch(processes: int) -> None:
    """With ``processes`` > 1 and no launcher around, run this script as that many local processes (the
    environment torchrun gives its workers), wait, and exit with their status; in each of them, return.

    Unlike torchrun, a worker's one-line ``error:`` is all a user mistake prints.
    """
    if processes == 1 or "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shared = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(processes),
              "LOCAL_WORLD_SIZE": str(processes)}
    workers = [subprocess.Popen([sys.executable, *sys.argv], env={**shared, "RANK": str(rank), "LOCAL_RANK": str(rank)})
               for rank in range(processes)]

    def terminated(signum: int, frame: object) -> None:  # a scheduler's kill must not orphan the workers
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    status = 0
    try:
        while any(worker.poll() is None for worker in workers) and not status:
            status = next((worker.returncode for worker in workers if worker.returncode), 0)
            time.sleep(0.1)
    except KeyboardInterrupt:
        status = 130
    except SystemExit as stop:
        status = int(stop.code or 1)
    for worker in workers:  # one failed, or an interrupt: the others would wait for it forever
        if worker.poll() is None:
            worker.terminate()
        worker.wait()
    sys.exit(status or next((worker.returncode for worker in workers if worker.returncode), 0))


def init_world(device: str | None = None, processes: int = 1) -> World:
    """Join the process group that torchrun / accelerate launch describe in the environment, if any; with
    ``processes`` > 1 and no launcher, start them first (:func:`launch`), one a GPU when GPUs are used."""
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if cuda and "WORLD_SIZE" not in os.environ and processes > torch.cuda.device_count():
        raise UsageError(f"processes={processes} is not allowed: this machine has {torch.cuda.device_count()} GPU(s), "
                         "one a process")
    launch(processes)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=device or default_device())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    if cuda:
        torch.cuda.set_device(local_rank)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=f"cuda:{local_rank}" if cuda else "cpu")
