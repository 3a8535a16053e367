"""DVC stage benchmark_layers@GROUP: every exit alone on the group's lm-eval tasks (one body pass per batch).

Reads model, seed and benchmarks (never alpha, layer or amateur); writes
metrics/benchmarks/GROUP_layers.json and the per-layer plot data.
"""

import sys

from acd.eval.benchmarks import Benchmarks, plot_rows, sweep
from acd.io import write_json
from acd.pipeline.params import ModelSeed, pick, read_params, section
from acd.pipeline.stage import run_stage


def main() -> None:
    group = sys.argv[1]
    params = read_params()
    document = sweep(group, pick(params, ModelSeed), section(params, "benchmarks", Benchmarks))
    for kind in ("head", "lens"):
        write_json(f"metrics/plots/benchmarks/{group}_{kind}.json", plot_rows(document, kind))
    write_json(f"metrics/benchmarks/{group}_layers.json", document)


if __name__ == "__main__":
    run_stage(main)
