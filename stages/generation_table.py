"""DVC stage `generation_table`: per-kind metrics -> metrics/generation.json (strategy x domain x plain|acd).

Also writes the ACD point of the per-exit generation plot (greedy ACD per domain, at the expert's layer).
"""

import json
from pathlib import Path

from acd.eval.generation_metrics import acd_plot_rows, generation_table
from acd.io import write_json
from acd.pipeline.stage import run_stage

IN, OUT = Path("data/generation_metrics"), Path("metrics/generation.json")
PLOT = Path("metrics/plots/generation_acd.json")


def main() -> None:
    trees = {kind: json.loads((IN / f"{kind}.json").read_text(encoding="utf-8")) for kind in ("plain", "acd")}
    write_json(PLOT, acd_plot_rows(trees["acd"]))
    write_json(OUT, generation_table(trees))


if __name__ == "__main__":
    run_stage(main)
