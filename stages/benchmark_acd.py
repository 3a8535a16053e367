"""DVC stage benchmark_acd@GROUP: the ACD model (expert vs amateur at `layer`, `alpha`) on the group's tasks.

Reads model, seed, the contrast knobs (alpha, layer, expert, amateur, amateur_temperature, keep_tail,
amateur_model, candidate_layers) and benchmarks; writes
metrics/benchmarks/GROUP_acd.json and the ACD point of the per-layer plots. Several GPUs: params
`processes: N` (or `torchrun --nproc_per_node N stages/benchmark_acd.py GROUP`): the same bytes as one process.
"""

import sys

from acd.eval.benchmarks import Benchmarks, contrast, plot_rows
from acd.io import write_json
from acd.pipeline.params import Decoding, pick, processes, read_params, section
from acd.pipeline.stage import run_stage
from acd.pipeline.world import init_world


def main() -> None:
    group = sys.argv[1]
    params = read_params()
    bench = section(params, "benchmarks", Benchmarks)
    world = init_world(bench.device, processes(params))  # several processes: each scores some batches
    document = contrast(group, pick(params, Decoding), bench)
    if not world.main:
        return
    write_json(f"metrics/plots/benchmarks/{group}_acd.json", plot_rows(document, "acd"))
    write_json(f"metrics/benchmarks/{group}_acd.json", document)


if __name__ == "__main__":
    run_stage(main)
