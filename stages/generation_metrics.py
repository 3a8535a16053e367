"""DVC stages `generation_metrics@plain|acd` and `generation_metrics_layers`: score generations.

    python stages/generation_metrics.py plain    # data/generations/plain -> data/generation_metrics/plain.json
    python stages/generation_metrics.py acd      # data/generations/acd   -> data/generation_metrics/acd.json
    python stages/generation_metrics.py layers   # data/generations/layers -> metrics/generation_layers.csv
"""

import sys
from pathlib import Path

from acd.errors import UsageError
from acd.pipeline.generation import GenerationParams
from acd.eval.generation_metrics import GenerationMetricsParams, layer_rows, score_tree, write_layer_csv
from acd.io import write_json
from acd.pipeline.params import Seed, pick, read_params, section
from acd.pipeline.stage import run_stage

GENERATIONS, OUT = Path("data/generations"), Path("data/generation_metrics")
LAYERS_CSV = Path("metrics/generation_layers.csv")


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) == 2 else ""
    if kind not in ("plain", "acd", "layers"):
        raise UsageError(f"arguments={sys.argv[1:]} are not allowed: generation_metrics.py plain|acd|layers")
    params = read_params()
    metrics, seed = section(params, "generation_metrics", GenerationMetricsParams), pick(params, Seed).seed
    generation = section(params, "generation", GenerationParams)
    groups = generation.layer_sweep_domains if kind == "layers" else generation.strategies
    tree = score_tree(GENERATIONS / kind, groups, metrics.scorer(), metrics, seed)
    if kind != "layers":
        write_json(OUT / f"{kind}.json", tree)
        return
    write_layer_csv(LAYERS_CSV, layer_rows(tree))


if __name__ == "__main__":
    run_stage(main)
