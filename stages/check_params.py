"""DVC stage `check_params`: every param of params.yaml checked before any other stage runs.

DVC deletes a stage's outputs before it runs the stage's command, so a stage that refused a bad param
(`dvc exp run -S alpha=1.5`) would leave its old outputs deleted. Every stage that reads params depends on
this one, which declares them all and runs first: a bad value stops `dvc repro` here with one line, and no
other stage's outputs are touched. Its output never changes (and persists), so a good change reruns only
the stages that read it.
"""

from pathlib import Path

from acd.eval.benchmarks import Benchmarks
from acd.eval.generation_metrics import GenerationMetricsParams
from acd.io import write_text
from acd.pipeline.chunking import CorpusParams
from acd.pipeline.generation import GenerationParams
from acd.pipeline.heads_source import heads_params
from acd.pipeline.params import Decoding, pick, processes, read_params, section
from acd.pipeline.prompts import PromptsParams
from acd.pipeline.stage import run_stage
from acd.pipeline.training import TrainParams

STAMP = Path("data/params_checked")
SECTIONS = {"corpus": CorpusParams, "train": TrainParams, "prompts": PromptsParams, "generation": GenerationParams,
            "generation_metrics": GenerationMetricsParams, "benchmarks": Benchmarks}


def main() -> None:
    params = read_params()
    pick(params, Decoding)
    processes(params)
    for name, cls in SECTIONS.items():
        section(params, name, cls)
    heads_params(params)
    text = "every param of params.yaml passed its checks\n"
    if not STAMP.is_file() or STAMP.read_text(encoding="utf-8") != text:
        write_text(STAMP, text)


if __name__ == "__main__":
    run_stage(main)
