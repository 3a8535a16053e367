"""The head-training figures of ``acd bench``: a step's throughput, and the memory its loss needs.

A spawned child process (its memory goes back to the system when it ends) builds the base model,
the exit heads and AdamW, runs one warm-up step (it allocates AdamW's state), then times training
steps with the chunked loss and with full logits, interleaved, one micro-batch per step.

Memory is measured where the two losses differ. Before each measured step the heads' gradients
exist, as they do for every micro-batch of an accumulated batch but the first; so the memory the
run holds whatever the loss (base model, heads, their gradients, AdamW's state: the *steady state*)
is already there. A step's figure is the peak above the steady state during its forward and
backward passes (the optimiser's step comes after and is the same for both losses): the body's
activations, the exit states, and the logits with their gradients, which is what chunking bounds.
On a GPU it is ``torch.cuda.max_memory_allocated`` minus the allocated bytes at the start; on a
CPU the process's resident set size, sampled every 5 ms, minus the RSS at the start.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from acd.core.architectures import num_layers
from acd.core.heads import ExitHeads
from acd.pipeline.training import train_step

MEMORY_METHODS = {
    "cuda": "torch.cuda.max_memory_allocated minus the allocated bytes at the start",
    "cpu": "process RSS sampled every 5 ms (psutil) minus the RSS at the start",
}
LOSSES = ("chunked", "full")


@dataclass(frozen=True)
class TrainWorkload:
    """One head-training step: ``exits`` heads spread over the layers, a ``micro_batch`` x ``seq_len`` block batch."""

    exits: int
    micro_batch: int
    seq_len: int
    loss_chunk: int = 4096  # train.loss_chunk's default
    reps: int = 3
    seed: int = 0


class PeakMemory:
    """Peak memory above the start while the block runs: CUDA's allocator peak, or the sampled process RSS."""

    def __init__(self, device: str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.peak = self.baseline = 0

    @property
    def above_baseline(self) -> int:
        return self.peak - self.baseline

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = self.peak = torch.cuda.memory_allocated()
            return self
        import psutil

        process, self._stop = psutil.Process(), threading.Event()
        self.baseline = self.peak = process.memory_info().rss

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, process.memory_info().rss)
                self._stop.wait(0.005)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()


def spread_layers(n_layers: int, count: int) -> list[int]:
    """``count`` exit layers evenly up to the last (12 of 24: 2, 4, ..., 24, the paper's); at most every layer."""
    return sorted({max(1, round(n_layers * (index + 1) / count)) for index in range(count)})


def training_parts(model: torch.nn.Module, exits: int, seed: int = 0) -> tuple[ExitHeads, torch.optim.Optimizer]:
    """``exits`` random exit heads spread up to the last layer, on the model's device, and their AdamW (lr 2e-4)."""
    device = next(model.parameters()).device
    heads = ExitHeads.for_model(model, spread_layers(num_layers(model), exits), base_model="benchmark", seed=seed)
    heads.to(device)
    return heads, torch.optim.AdamW(heads.parameters(), lr=2e-4)


def tensor_bytes(tensors: Any) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def measure_training(model: torch.nn.Module, workload: TrainWorkload) -> dict[str, Any]:
    """Per loss, each repetition's step seconds and peak bytes above the steady state; the steady state's tensors."""
    device = str(next(model.parameters()).device)
    heads, optimizer = training_parts(model, workload.exits, workload.seed)
    generator = torch.Generator().manual_seed(workload.seed)
    vocab = model.get_output_embeddings().weight.shape[0]
    chunk = {"chunked": workload.loss_chunk, "full": None}

    def step(loss: str, memory: PeakMemory | None = None) -> None:
        tokens = torch.randint(vocab, (workload.micro_batch, workload.seq_len), generator=generator).to(device)
        train_step(model, heads, optimizer, [tokens], chunk[loss], forward_backward=memory)

    step("chunked")  # warm-up: allocates AdamW's state
    seconds: dict[str, list[float]] = {loss: [] for loss in LOSSES}
    peaks: dict[str, list[int]] = {loss: [] for loss in LOSSES}
    for rep in range(workload.reps):
        for loss in LOSSES if rep % 2 == 0 else LOSSES[::-1]:
            for parameter in heads.parameters():  # the gradients of earlier micro-batches: steady state
                parameter.grad = torch.zeros_like(parameter)
            memory = PeakMemory(device)
            if memory.cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            step(loss, memory)
            if memory.cuda:
                torch.cuda.synchronize()
            seconds[loss].append(time.perf_counter() - started)
            peaks[loss].append(memory.above_baseline)
    return {
        "exit_layers": heads.exit_layers,
        "seconds": seconds,
        "peak_above_steady_bytes": peaks,
        "steady_state_tensor_bytes": {
            "base_model": tensor_bytes(model.parameters()),
            "heads": tensor_bytes(heads.parameters()),
            "gradients": tensor_bytes(heads.parameters()),
            "adamw_state": tensor_bytes(t for state in optimizer.state.values() for t in state.values()
                                        if isinstance(t, torch.Tensor)),
        },
    }


def _child(build: Any, workload: TrainWorkload, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    return measure_training(build(), workload)


def measure_in_child(build: Any, workload: TrainWorkload) -> dict[str, Any]:
    """:func:`measure_training` on ``build()`` (a picklable callable returning the model) in a spawned process
    with this process's torch threads."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_child, build, workload, torch.get_num_threads()).result()


def summarise(raw: dict[str, Any], workload: TrainWorkload) -> dict[str, dict[str, Any]]:
    """Per loss: median tokens/s, step seconds and peak bytes above the steady state."""
    tokens = workload.micro_batch * (workload.seq_len - 1)
    return {
        loss: {
            "tokens_per_s": round(tokens / statistics.median(raw["seconds"][loss]), 2),
            "step_s": round(statistics.median(raw["seconds"][loss]), 3),
            "peak_above_steady_bytes": int(statistics.median(raw["peak_above_steady_bytes"][loss])),
            "peak_above_steady_bytes_per_rep": raw["peak_above_steady_bytes"][loss],
        }
        for loss in LOSSES
    }


def peak_ratio(raw: dict[str, Any]) -> float:
    """Median over repetitions of chunked / full peak above the steady state (each pair measured back to back)."""
    pairs = zip(raw["peak_above_steady_bytes"]["chunked"], raw["peak_above_steady_bytes"]["full"], strict=True)
    return statistics.median(chunked / max(full, 1) for chunked, full in pairs)
