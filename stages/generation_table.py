"""DVC stage `generation_table`: per-kind metrics -> metrics/generation.json (strategy x domain x plain|acd)."""

import json
from pathlib import Path

from acd.generation_metrics import generation_table
from acd.io import write_json
from acd.stage import run_stage

IN, OUT = Path("data/generation_metrics"), Path("metrics/generation.json")


def main() -> None:
    trees = {kind: json.loads((IN / f"{kind}.json").read_text(encoding="utf-8")) for kind in ("plain", "acd")}
    write_json(OUT, generation_table(trees))


if __name__ == "__main__":
    run_stage(main)
