"""Side by side in one run: vocabulary projections padded to ALIGN rows (acd.core.model.project) against unpadded.

    python scripts/aligned_gemm.py [--device cuda --dtype bfloat16] [--reps 5]

Times a head-training step (12 exits of the random GPT2-Medium, 8x512 on a GPU, 1x256 on a CPU, chunked
loss) and ACD scoring (head amateur, 8x512), each with padding (ALIGN = 64) and without (ALIGN = 1: the
head's own ``F.linear``), interleaved; prints each side's median seconds and their ratio. On a CPU both
sides run the same code (padding applies on a GPU only): the ratio is then ~1 by construction.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import acd.core.model as model_module  # noqa: E402
from acd.pipeline.training import train_step  # noqa: E402
from acd.tools.perf import PLAIN, Bench, BenchOptions  # noqa: E402
from acd.tools.perf_training import training_parts  # noqa: E402

SIDES = {"padded": 64, "unpadded": 1}


def side_by_side(name: str, run: Callable[[], object], bench: Bench, reps: int) -> None:
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    for rep in range(reps + 1):  # the first round warms both sides up and is not counted
        for side in SIDES if rep % 2 == 0 else list(SIDES)[::-1]:
            model_module.ALIGN = SIDES[side]
            bench.synchronize()
            started = time.perf_counter()
            run()
            bench.synchronize()
            if rep:
                seconds[side].append(time.perf_counter() - started)
    medians = {side: statistics.median(values) for side, values in seconds.items()}
    ratios = statistics.median(p / u for p, u in zip(seconds["padded"], seconds["unpadded"], strict=True))
    print(f"{name}: padded {medians['padded'] * 1e3:.1f} ms, unpadded {medians['unpadded'] * 1e3:.1f} ms, "
          f"padded/unpadded {ratios:.3f} (median of {reps} paired runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    bench = Bench(BenchOptions(device=args.device, dtype=args.dtype))
    device = bench.device
    with bench.variant(PLAIN) as model:
        heads, optimizer = training_parts(model, 12)
        micro, length = (8, 512) if device == "cuda" else (1, 256)
        tokens = [bench.token_ids(micro, length)]
        side_by_side(f"train step, 12 heads, {micro}x{length}",
                     lambda: train_step(model, heads, optimizer, tokens, 4096), bench, args.reps)
    ids = bench.token_ids(8, 512 if device == "cuda" else 128)
    side_by_side(f"ACD scoring (head amateur), {ids.shape[0]}x{ids.shape[1]}", lambda: bench.score("head", ids),
                 bench, args.reps)


if __name__ == "__main__":
    main()
