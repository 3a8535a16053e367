"""The offline pipeline end to end (`acd demo`), and that alpha / layer rerun only the ACD stages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from acd.tools.demo import IDENTITY, run_demo

ACD_STAGES = {
    "generate_acd@greedy", "generate_acd@top-p", "generation_metrics@acd", "generation_table",
    "benchmark_acd@lambada", "benchmark_acd@wikitext", "benchmark_acd@inverse_scaling", "benchmark_report",
    "compare_heads_acd", "compare_heads",
}


def dvc(directory: Path, *args: str, stdout_only: bool = False) -> str:
    env = {**os.environ, **IDENTITY, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=directory, env=env, text=True,
                            capture_output=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout if stdout_only else result.stdout + result.stderr


def git(directory: Path, *args: str) -> None:
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", *args], cwd=directory, env=env, check=True)


@pytest.mark.slow
def test_demo_runs_everything_and_alpha_or_layer_rerun_only_acd_stages(tmp_path: Path) -> None:
    demo = run_demo(tmp_path / "demo", reports=False)
    for name in ["train_heads.json", "generation.json", "generation_layers.csv", "train_loss.csv", "compare_heads.json",
                 "compare_heads.md", "plots/generation_acd.json", "benchmarks/lambada_layers.json",
                 "benchmarks/lambada_acd.json", "benchmarks/report.md"]:
        assert (demo / "metrics" / name).stat().st_size > 0, name
    generation = json.loads((demo / "metrics/generation.json").read_text())
    assert "greedy" in json.dumps(generation)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=demo, text=True, capture_output=True).stdout
    assert status.strip() == "", status

    for change in ("alpha=0.2", "layer=4"):
        output = dvc(demo, "exp", "run", "-S", change)
        ran = set(re.findall(r"Running stage '([^']+)'", output))
        assert ran == ACD_STAGES, (change, sorted(ran))
        if change == "alpha=0.2":  # the README's walk-through: a branch per alpha, then metrics diff main <branch>
            git(demo, "checkout", "-q", "-b", "alpha-0.2")
            git(demo, "commit", "-q", "-am", "alpha 0.2")
            diff = json.loads(dvc(demo, "metrics", "diff", "main", "alpha-0.2", "--json", stdout_only=True))
            assert "metrics/benchmarks/lambada_acd.json" in diff
            assert "metrics/benchmarks/lambada_layers.json" not in diff
            changed = set(diff["metrics/compare_heads.json"])
            assert "settings.alpha" in changed and any("+acd." in key for key in changed), changed
            assert not {key for key in changed if key.startswith(("table.original.", "table.new."))}, changed
    columns = dvc(demo, "exp", "show", "--csv").splitlines()[0].split(",")
    assert "alpha" in columns and "layer" in columns
