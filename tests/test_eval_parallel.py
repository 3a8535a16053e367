"""lm-eval stages under several processes: each scores whole batches, the output is the bytes of one process."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.models.utils import Collator

from acd.eval.lm_eval_model import group_key, sort_key, token_batches
from stage_script import run, table6_project

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["lambada_local", "wikitext_local", "inverse_scaling_memo_trap_local"]  # loglikelihood, rolling, choice


def requests(seed: int, count: int) -> list[tuple]:
    """Requests as HFLM builds them: (strings, context tokens, continuation tokens); many share a context
    and have one-token continuations (the multiple-choice case HFLM's logits cache groups)."""
    rng = random.Random(seed)
    contexts = [[rng.randrange(50) for _ in range(rng.randrange(1, 9))] for _ in range(count // 3 + 1)]
    made = []
    for index in range(count):
        continuation = [rng.randrange(50) for _ in range(rng.choice([1, 1, 2, 3]))]
        made.append(((f"c{index}", f"x{index}"), rng.choice(contexts), continuation))
    return made


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("processes", [2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_each_process_collator_forms_exactly_its_batches(grouped: bool, processes: int, batch_size: int) -> None:
    for seed in range(20):
        reqs = requests(seed, 23)
        batches = token_batches(reqs, batch_size, grouped)
        assert sorted(index for batch in batches for index in batch) == list(range(len(reqs)))
        for rank in range(processes):
            mine = sorted(index for batch in batches[rank::processes] for index in batch)
            subset = [reqs[index] for index in mine]
            # What HFLM's _loglikelihood_tokens does with the process's requests: the same Collator.
            collator = Collator(subset, sort_fn=sort_key, group_fn=group_key,
                                group_by="contexts" if grouped else None)
            formed = []
            for batch in collator.get_batched(n=batch_size):
                # grouped, a batch holds one request of each group: the group's other members ride along
                keys = {group_key(request) for request in batch}
                formed.append([mine[i] for i, request in enumerate(subset)
                               if (group_key(request) in keys if grouped else any(request is b for b in batch))])
            assert formed == batches[rank::processes]


def torchrun(script: str, *args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "stages" / script), *args], env=env, capture_output=True, text=True, timeout=900)
    assert launched.returncode == 0, launched.stderr[-3000:]


def outputs() -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(Path("metrics").rglob("*.json"))}


@pytest.mark.slow
def test_two_gloo_processes_write_the_benchmark_bytes_of_one(
    tmp_path: Path, tiny_gpt2: Path, gpt2_heads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`torchrun --nproc_per_node 2 stages/benchmark_{layers,acd}.py GROUP`: per-exit sweep (one body pass,
    rolling windows included) and HFLM over the ACD model; every metrics file equals one process's."""
    params = {
        "model": str(tiny_gpt2), "alpha": 0.1, "layer": 2, "expert": "original", "amateur": "head", "seed": 0,
        "benchmarks": {"tasks": {"mixed": TASKS}, "heads": str(gpt2_heads), "limit": 7, "batch_size": 2,
                       "bootstrap_iters": 0, "device": "cpu"},
    }
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    monkeypatch.chdir(tmp_path)
    for stage in ("benchmark_layers.py", "benchmark_acd.py"):
        run(stage, "mixed")
    one = outputs()
    assert len(one) == 5  # the two documents and the head, lens and acd plot rows
    shutil.rmtree("metrics")
    torchrun("benchmark_layers.py", "mixed")
    # params `processes: 2`: the stage starts its own two processes (no launcher in front); DVC would not rerun
    (tmp_path / "params.yaml").write_text(json.dumps({**params, "processes": 2}))
    started = subprocess.run([sys.executable, str(ROOT / "stages" / "benchmark_acd.py"), "mixed"], capture_output=True,
                             text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert started.returncode == 0, started.stderr[-3000:]
    assert outputs() == one


def test_processes_param_is_checked_and_a_worker_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from acd.errors import UsageError
    from acd.pipeline.params import processes

    assert processes({}) == 1 and processes({"processes": 4}) == 4
    for bad in (0, -1, "2", 1.5, True):
        with pytest.raises(UsageError, match=r"processes=.* is not allowed: .* integer >= 1"):
            processes({"processes": bad})
    import torch

    from acd.pipeline.world import init_world

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match=r"processes=2 is not allowed: this machine has 1 GPU\(s\)"):
        init_world(processes=2)
    monkeypatch.undo()
    # The inputs are checked before any worker starts: one `error:` line, exit 2, no launcher traceback.
    (tmp_path / "params.yaml").write_text(json.dumps({"model": "unused", "processes": 2}))
    monkeypatch.chdir(tmp_path)
    failed = subprocess.run([sys.executable, str(ROOT / "stages" / "generate.py"), "plain", "greedy"],
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: generation is missing")


@pytest.mark.slow
def test_two_gloo_processes_write_the_compare_heads_bytes_of_one(
    tmp_path: Path, tiny_gpt2: Path, gpt2_heads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`torchrun --nproc_per_node 2 stages/compare_heads.py acd`: decoding, scoring and lm-eval split by batch."""
    table6_project(tmp_path, tiny_gpt2, gpt2_heads, n_prompts=5, limit=5, monkeypatch=monkeypatch)
    out = Path("data/compare_heads")
    run("compare_heads.py", "acd")
    one = {str(path): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    assert len(one) == 3  # the generations, their metrics, the lm-eval documents
    shutil.rmtree(out)
    torchrun("compare_heads.py", "acd")
    assert {str(path): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()} == one


def test_terminating_the_stage_stops_its_workers(tmp_path: Path, tiny_gpt2: Path, gpt2_heads: Path) -> None:
    """params `processes: 2`: a SIGTERM to the stage (a scheduler's kill) ends both workers, none is orphaned."""
    import signal
    import time

    import psutil

    params = {"model": str(tiny_gpt2), "seed": 0, "processes": 2,
              "benchmarks": {"tasks": {"mixed": TASKS}, "heads": str(gpt2_heads), "limit": 7, "batch_size": 2,
                             "bootstrap_iters": 0, "device": "cpu"}}
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    stage = subprocess.Popen([sys.executable, str(ROOT / "stages" / "benchmark_layers.py"), "mixed"], cwd=tmp_path,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := psutil.Process(stage.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2
    stage.send_signal(signal.SIGTERM)
    assert stage.wait(timeout=60) == 128 + signal.SIGTERM
    gone, alive = psutil.wait_procs(workers, timeout=1)  # the stage waited for them before it exited
    assert not alive
