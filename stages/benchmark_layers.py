"""DVC stage benchmark_layers@GROUP: every exit alone on the group's lm-eval tasks (one body pass per batch).

Reads model, seed and benchmarks (never alpha, layer or amateur); writes
metrics/benchmarks/GROUP_layers.json and the per-layer plot data. Several GPUs: params
`processes: N` (or `torchrun --nproc_per_node N stages/benchmark_layers.py GROUP`): the same bytes as one process.
"""

import sys

from acd.eval.benchmarks import Benchmarks, plot_rows, sweep
from acd.io import write_json
from acd.pipeline.params import ModelSeed, pick, processes, read_params, section
from acd.pipeline.stage import run_stage
from acd.pipeline.world import init_world


def main() -> None:
    group = sys.argv[1]
    params = read_params()
    bench = section(params, "benchmarks", Benchmarks)
    world = init_world(bench.device, processes(params))  # several processes: each scores some batches
    document = sweep(group, pick(params, ModelSeed), bench)
    if not world.main:
        return
    for kind in ("head", "lens"):
        write_json(f"metrics/plots/benchmarks/{group}_{kind}.json", plot_rows(document, kind))
    write_json(f"metrics/benchmarks/{group}_layers.json", document)


if __name__ == "__main__":
    run_stage(main)
