"""DVC stage benchmark_report: per-exit tables, ACD beside the paper, ACD's effect per task.

Usage: python stages/benchmark_report.py GROUP...; reads metrics/benchmarks/GROUP_{layers,acd}.json,
writes metrics/benchmarks/report.md and prints it.
"""

import json
import sys
from pathlib import Path

from acd.reports.benchmark_report import render
from acd.errors import UsageError
from acd.io import write_text
from acd.pipeline.stage import run_stage


def main() -> None:
    docs: dict = {"layers": {}, "acd": {}}
    for group in sys.argv[1:]:
        for kind in docs:
            path = Path(f"metrics/benchmarks/{group}_{kind}.json")
            if not path.is_file():
                raise UsageError(f"group={group!r} has no {path}: run `dvc repro benchmark_{kind}@{group}` first")
            docs[kind][group] = json.loads(path.read_text(encoding="utf-8"))
    report = render(docs)
    write_text("metrics/benchmarks/report.md", report)
    print(report)


if __name__ == "__main__":
    run_stage(main)
