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
    "compare_heads_acd", "compare_heads", "figures", "check_params",
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
                 "benchmarks/lambada_acd.json", "benchmarks/report.md", "figures/generation_diversity.png",
                 "figures/lambada_acc.png", "figures/train_loss.png"]:
        assert (demo / "metrics" / name).stat().st_size > 0, name
    # Behaviour on the small real model (measured: head val loss 7.95, 7.65, 6.43, 5.64 at layers 2..8; greedy
    # diversity plain 0.04/0.17/0.06 vs ACD 0.82/0.39/0.27 on bookcorpus/wikinews/wikitext; WikiText-2 word
    # perplexity 2.7e5, 1.6e5, 3.3e4, 1.3e4 at heads 2..8).
    exits = json.loads((demo / "metrics/train_heads.json").read_text())["exits"]
    losses = [exits[f"head{layer}"]["val_loss"] for layer in (2, 4, 6, 8)]
    assert losses == sorted(losses, reverse=True), losses  # exits get better with depth
    greedy = json.loads((demo / "metrics/generation.json").read_text())["table"]["greedy"]
    plain = [cells["plain"]["diversity"] for cells in greedy.values()]
    acd = [cells["acd"]["diversity"] for cells in greedy.values()]
    assert all(a > p for a, p in zip(acd, plain)) and sum(acd) / 3 > sum(plain) / 3 + 0.15, (plain, acd)
    wikitext = json.loads((demo / "metrics/benchmarks/wikitext_layers.json").read_text())["results"]["wikitext_local"]
    perplexities = [wikitext[f"head{layer}"]["word_perplexity"] for layer in (2, 4, 6, 8)]
    assert perplexities == sorted(perplexities, reverse=True), perplexities  # paper Fig. 5: later exits better
    status = subprocess.run(["git", "status", "--porcelain"], cwd=demo, text=True, capture_output=True).stdout
    assert status.strip() == "", status
    # A bad value stops at check_params, before DVC deletes any stage's outputs: the workspace stays as it was.
    before = {path: path.read_bytes() for path in (demo / "metrics").rglob("*") if path.is_file()}
    failed = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "-S", "alpha=1.5"], cwd=demo, text=True,
                            capture_output=True)
    assert failed.returncode != 0
    assert [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error:")] == [
        "error: alpha=1.5 is not allowed: alpha must be a number in [0, 1]"]
    assert {path: path.read_bytes() for path in (demo / "metrics").rglob("*") if path.is_file()} == before
    assert (demo / "data" / "generations" / "acd" / "greedy").is_dir()
    git(demo, "checkout", "-q", "--", "params.yaml")

    for change in ("alpha=0.2", "layer=6"):
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
