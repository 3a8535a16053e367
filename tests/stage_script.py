"""Run a DVC stage entry point in this process, as `python stages/SCRIPT ARGS...` would."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

STAGES = Path(__file__).resolve().parents[1] / "stages"


def run(script: str, *args: str) -> None:
    argv = sys.argv
    sys.argv = [script, *args]
    try:
        runpy.run_path(str(STAGES / script), run_name="__main__")
    finally:
        sys.argv = argv
