"""Wall time of the lm-eval per-exit sweep: one body pass for all exits vs one lm-eval run per exit.

    python benchmarks/lm_eval_sweep.py [--model DIR] [--tasks lambada_local,...] [--limit N] [--batch-size 8]

Without --model it builds a GPT2-Medium-shaped model (24 layers, d=1024) with random weights
and random exit heads at every even layer (12 heads + the original head = 13 exits): timing
does not depend on the weights. Both ways reuse one loaded model and score the same requests;
the script also checks that they give the same metrics.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from acd.benchmarks import task_metrics
from acd.exits import parse_exits
from acd.heads import ExitHeads
from acd.lm_eval_model import ACDLM
from acd.loading import load_pretrained
from acd.tasks import load_tasks, task_manager
from acd.tiny import make_tiny_model


def lm_eval_runs(models: list, tasks: list, manager, limit: int | None) -> tuple[float, list[dict]]:
    """Seconds for one simple_evaluate per entry of ``models`` (an LM, or a callable preparing one)."""
    from lm_eval import simple_evaluate

    start, results = time.perf_counter(), []
    for model in models:
        lm = model() if callable(model) else model
        out = simple_evaluate(model=lm, tasks=tasks, limit=limit, bootstrap_iters=0, log_samples=False,
                              task_manager=manager)
        results.append(task_metrics(out["results"]))
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="local model directory (default: a GPT2-Medium-shaped random model)")
    parser.add_argument("--tasks", default="lambada_local,inverse_scaling_memo_trap_local")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--exits", default="all")
    parser.add_argument("--output", help="write the timings as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, task_manager(include_defaults=False) as manager:
        model_dir = args.model or make_tiny_model(Path(tmp) / "model", n_layers=24, d_model=1024)
        heads = None  # a given model is swept over its lens exits (or pass --exits)
        if not args.model:
            base, _ = load_pretrained(model_dir, device="cpu")
            heads = ExitHeads.for_model(base, list(range(2, 25, 2)), base_model=str(model_dir))
            del base
        tasks = load_tasks(manager, args.tasks.split(","))

        sweep = ACDLM(pretrained=str(model_dir), heads=heads, exits=args.exits, batch_size=args.batch_size, device="cpu")
        names = sweep.exit_names
        one_pass, sweep_results = lm_eval_runs([sweep] + [sweep.replay(name) for name in names[1:]], tasks, manager,
                                               args.limit)
        del sweep

        single = ACDLM(pretrained=str(model_dir), heads=heads, batch_size=args.batch_size, device="cpu")
        contrasts = parse_exits(args.exits, single.model)

        def prepared(contrast):
            def prepare():
                single.model.set_contrast(expert=contrast.expert, amateur=contrast.amateur)
                return single
            return prepare

        separately, single_results = lm_eval_runs([prepared(c) for c in contrasts.values()], tasks, manager, args.limit)

    worst = max(
        abs(a[task][metric] - b[task][metric]) / max(abs(b[task][metric]), 1e-12)
        for a, b in zip(sweep_results, single_results) for task in b for metric in b[task]
    )
    report = {
        "exits": len(names), "tasks": args.tasks, "limit": args.limit, "batch_size": args.batch_size,
        "one_pass_s": round(one_pass, 2), "one_run_per_exit_s": round(separately, 2),
        "speedup": round(separately / one_pass, 2), "max_relative_difference": worst,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
