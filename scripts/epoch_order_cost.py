"""Side by side in one run: a training step's data selection with the epoch's order cached (as
``train_heads`` does) and recomputed at every step (as before).

    python scripts/epoch_order_cost.py [--blocks 1270000] [--steps 50]

Blocks: the paper's corpus is ~650M tokens, ~1.27M blocks of 512 (a memory-mapped uint16 array as
``data/blocks`` holds it; random tokens here). Prints the median milliseconds per step of each side.
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
    args = parser.parse_args()
    params = TrainParams()  # the paper's: batch 64 of micro-batches of 8
    with tempfile.TemporaryDirectory() as tmp:
        blocks = np.lib.format.open_memmap(Path(tmp) / "blocks.npy", mode="w+", dtype=np.uint16,
                                           shape=(args.blocks, 512))
        blocks[:] = np.random.default_rng(0).integers(0, 50257, size=blocks.shape, dtype=np.uint16)
        sides = {"cached": epoch_order, "per step": epoch_order.__wrapped__}
        seconds: dict[str, list[float]] = {side: [] for side in sides}
        for step in range(args.steps):
            for side in sides if step % 2 == 0 else list(sides)[::-1]:
                training.epoch_order = sides[side]
                started = time.perf_counter()
                step_batches(blocks, step, params, seed=0, world=World(), device="cpu")
                seconds[side].append(time.perf_counter() - started)
        training.epoch_order = epoch_order
    for side, values in seconds.items():
        print(f"{side}: {statistics.median(values) * 1e3:.2f} ms per step (median of {args.steps})")


if __name__ == "__main__":
    main()
