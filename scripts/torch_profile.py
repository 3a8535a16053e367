"""Where the time of ``acd bench``'s costliest cases goes: torch.profiler tables, by device time.

    python scripts/torch_profile.py [--device cuda --dtype bfloat16] [--case train|greedy|score]... [--rows 20]

Cases: ``train`` one head-training step as ``train_heads`` runs it (12 exits, micro-batches of 8x512 on a
GPU, 1x256 on a CPU; chunked loss), ``greedy`` ACD greedy decoding (lens amateur, batch 8, 16 new
tokens) beside plain, ``score`` lm-eval-style scoring of 8x512 tokens, ACD (head amateur) beside plain.
The model is ``acd bench``'s random GPT2-Medium. Each case runs once to warm up, then once profiled.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from acd.pipeline.training import train_step  # noqa: E402
from acd.tools.perf import PLAIN, Bench, BenchOptions  # noqa: E402
from acd.tools.perf_training import training_parts  # noqa: E402


def show(title: str, run: Callable[[], object], device: str, rows: int) -> None:
    run()  # warm-up: kernels chosen, caches and optimiser state allocated
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
        if device == "cuda":
            torch.cuda.synchronize()
    key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    print(f"\n=== {title} ===")
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--case", action="append", choices=["train", "greedy", "score"])
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    bench = Bench(BenchOptions(device=args.device, dtype=args.dtype))
    device, cases = bench.device, args.case or ["train", "greedy", "score"]
    if "train" in cases:
        base = bench.model  # the frozen model; its own two random heads are not trained here
        with bench.variant(PLAIN) as model:
            heads, optimizer = training_parts(model, 12)
            micro, length = (8, 512) if device == "cuda" else (1, 256)
            tokens = [bench.token_ids(micro, length)]
            show(f"train step: 12 heads, {micro}x{length}", lambda: train_step(model, heads, optimizer, tokens, 4096),
                 device, args.rows)
        del heads, optimizer, base
    if "greedy" in cases:
        ids = bench.token_ids(8, 32)
        for variant in (PLAIN, "lens"):
            show(f"greedy {variant}, batch 8, 16 new tokens", lambda: bench.greedy(variant, ids, 16), device, args.rows)
    if "score" in cases:
        ids = bench.token_ids(8, 512)
        for variant in (PLAIN, "head"):
            show(f"score {variant}, 8x512", lambda: bench.score(variant, ids), device, args.rows)


if __name__ == "__main__":
    main()
