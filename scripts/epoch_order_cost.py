"""Side by side in one run: a training step's data selection with the epoch's order cached (as
``train_heads`` does) and recomputed at every step (as before).

    python scripts/epoch_order_cost.py [--blocks 1270000] [--steps 50] [--train --device cuda]

Blocks: the paper's corpus is ~650M tokens, ~1.27M blocks of 512 (a memory-mapped uint16 array as
``data/blocks`` holds it; random tokens here). Prints the median milliseconds per step of each side; with
``--train`` each step is a whole training step at the paper's batch (64 blocks in micro-batches of 8, 12 heads
on ``acd bench``'s random GPT2-Medium, bfloat16 autocast on a GPU), and the figure is train_step_tokens_per_s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from acd.pipeline import training  # noqa: E402
from acd.pipeline.training import TrainParams, epoch_order, step_batches  # noqa: E402
from acd.pipeline.world import World  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=1_270_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    params = TrainParams()  # the paper's: batch 64 of micro-batches of 8
    step = training_step(params, args.device) if args.train else selection_only(params, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        blocks = np.lib.format.open_memmap(Path(tmp) / "blocks.npy", mode="w+", dtype=np.uint16,
                                           shape=(args.blocks, 512))
        blocks[:] = np.random.default_rng(0).integers(0, 50257, size=blocks.shape, dtype=np.uint16)
        sides = {"cached": epoch_order, "per step": epoch_order.__wrapped__}
        seconds: dict[str, list[float]] = {side: [] for side in sides}
        for number in range(args.steps):
            for side in sides if number % 2 == 0 else list(sides)[::-1]:
                training.epoch_order = sides[side]
                started = time.perf_counter()
                step(blocks, number)
                seconds[side].append(time.perf_counter() - started)
        training.epoch_order = epoch_order
    tokens = params.batch_size * (blocks.shape[1] - 1)
    for side, values in seconds.items():
        median = statistics.median(values)
        print(f"{side}: {median * 1e3:.2f} ms per step, {tokens / median:,.0f} target tokens/s (median of {args.steps})")


def selection_only(params: TrainParams, device: str):
    return lambda blocks, number: step_batches(blocks, number, params, seed=0, world=World(), device=device)


def training_step(params: TrainParams, device: str):
    import torch

    from acd.pipeline.training import train_step
    from acd.tools.perf import RANDOM_MODELS, BenchOptions, build_base
    from acd.tools.perf_training import training_parts

    model = build_base(BenchOptions(model=next(iter(RANDOM_MODELS)), device=device), device)
    heads, optimizer = training_parts(model, 12)

    def step(blocks, number):
        train_step(model, heads, optimizer, step_batches(blocks, number, params, 0, World(), device), 4096)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return step


if __name__ == "__main__":
    main()
