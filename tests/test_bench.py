"""``acd bench``: the figures' JSON, the variants it times, and its one-line errors. Never timings."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from acd.tools.perf import FIGURES, PLAIN, Bench, BenchOptions, hflm_log_likelihood, paired_ratio
from acd.errors import UsageError

MACHINE_KEYS = {"cpu", "cpu_count", "torch_threads", "torch", "transformers", "python", "device", "load_average_1min"}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    # One thread: the timings are not checked, and OpenMP threads only wait on each other on a busy CI machine.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "acd.tools.cli", "bench", *args], capture_output=True, text=True, env=env, timeout=600
    )


RATIO_FIGURES = {"acd_greedy_over_plain": {"goal_max": 1.15}, "acd_score_over_plain": {"goal_max": 1.2},
                 "sweep_speedup": {"goal_min": 6.0}, "chunked_over_full_peak_mem": {"goal_max": 0.35}}
TRAIN_FIGURES = ("train_step_tokens_per_s", "train_peak_mem_bytes", "chunked_over_full_peak_mem")


def test_quick_bench_writes_every_figure_and_keeps_others(tiny_gpt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics" / "bench.json"
    out.parent.mkdir()
    out.write_text(json.dumps({"older_figure": {"value": 7.0}}))
    result = run_bench("--model", str(tiny_gpt2), "--quick", "--reps", "1", "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"older_figure", *FIGURES}, "figures not asked for stay in the file"
    assert set(FIGURES) == {*RATIO_FIGURES, *TRAIN_FIGURES, "chunk_tokens_per_s"}
    for name in FIGURES:
        record = data[name]
        assert math.isfinite(record["value"]) and record["value"] > 0, name
        assert {key: record[key] for key in ("goal_max", "goal_min") if key in record} == RATIO_FIGURES.get(name, {})
        assert isinstance(record["meets_goal"], bool)
        assert MACHINE_KEYS <= set(record["machine"]) and record["machine"]["device"] == "cpu"
        assert record["setup"]["model"] == str(tiny_gpt2)
        assert name in result.stdout
    greedy = data["acd_greedy_over_plain"]
    assert set(greedy["cases"]) == {"head_batch1", "lens_batch1", "head_batch8", "lens_batch8"}
    assert greedy["value"] == max(case["ratio"] for case in greedy["cases"].values())
    assert greedy["setup"]["workload"]["new_tokens"] == 8 and greedy["setup"]["amateur_layer"] == 2

    sweep = data["sweep_speedup"]
    assert sweep["setup"]["exits"] == ["head2", "head4"], "every even layer's head of the 4-layer model"
    assert sweep["value"] == sweep["cases"]["heads"]["ratio"] and sweep["cases"]["heads"]["max_abs_difference"] < 1e-3

    for name in TRAIN_FIGURES:
        assert data[name]["setup"]["exit_layers"] == [2, 4] and data[name]["setup"]["workload"]["micro_batch"] == 1
        assert "RSS" in data[name]["setup"]["memory_method"]
        assert set(data[name]["cases"]) == {"chunked", "full"}
    train = data["train_peak_mem_bytes"]["cases"]
    assert data["train_peak_mem_bytes"]["value"] == train["chunked"]["peak_above_steady_bytes"]
    assert data["train_step_tokens_per_s"]["value"] == train["chunked"]["tokens_per_s"]
    steady = data["train_peak_mem_bytes"]["setup"]["steady_state_tensor_bytes"]
    assert steady["heads"] == steady["gradients"] > 0
    assert 2 * steady["heads"] <= steady["adamw_state"] < 2 * steady["heads"] + 1024, "two moments (and step counts)"

    chunk = data["chunk_tokens_per_s"]
    assert chunk["cases"]["chunk"]["tokens"] > 10_000 and chunk["setup"]["block_size"] == 512


def test_training_peak_is_above_the_steady_state_and_full_logits_need_more(tiny_gpt2: Path) -> None:
    """Logits of 2 heads x 255 positions x 50257 words are 100 MB: the full loss holds both at once, the chunked one."""
    from acd.tools.perf import build_base
    from acd.tools.perf_training import TrainWorkload, measure_training, peak_ratio

    model = build_base(BenchOptions(model=str(tiny_gpt2)), "cpu")
    raw = measure_training(model, TrainWorkload(exits=2, micro_batch=1, seq_len=256, reps=1))
    peaks = raw["peak_above_steady_bytes"]
    assert raw["exit_layers"] == [2, 4]
    assert 0 < peaks["chunked"][0] < peaks["full"][0] and 0 < peak_ratio(raw) < 1


def test_spread_layers() -> None:
    from acd.tools.perf_training import spread_layers

    assert spread_layers(24, 12) == list(range(2, 25, 2))
    assert spread_layers(24, 4) == [6, 12, 18, 24]
    assert spread_layers(4, 12) == [1, 2, 3, 4]


def test_bad_input_is_one_line_with_exit_code_2(tiny_gpt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run_bench("--model", str(tiny_gpt2), "--quick", "--out", str(out), "--figure", "speed")
    assert result.returncode == 2, result.stderr
    message = f"error: figure='speed' is not allowed: use one of {', '.join(FIGURES)}"
    assert result.stderr.strip().splitlines()[-1] == message, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reps": 0}, r"^reps=0 is not allowed: reps must be an integer >= 1$"),
        ({"device": "tpu"}, r"^device='tpu' is not allowed: use one of cpu, cuda$"),
        ({"dtype": "int8"}, r"^dtype='int8' is not allowed: use one of float32, float16, bfloat16$"),
        ({"layer": 4}, r"^layer=4 is out of range: allowed 1\.\.3 for this model$"),
        ({"corpus": ("missing.jsonl",)}, r"^corpus='missing\.jsonl' is not allowed: give an existing \.txt, \.jsonl"),
    ],
)
def test_bad_options_are_clear_errors(tiny_gpt2: Path, options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Bench(BenchOptions(model=str(tiny_gpt2), **{"device": "cpu", **options})).model


def test_variants_are_the_plain_model_and_acd(tiny_gpt2: Path) -> None:
    bench = Bench(BenchOptions(model=str(tiny_gpt2), device="cpu", quick=True))
    ids = bench.token_ids(2, 12)
    original = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    with torch.no_grad(), bench.variant(PLAIN) as model:
        torch.testing.assert_close(model(ids).logits, original(ids).logits)
    acd_class = type(bench.model)
    for amateur in ("head", "lens"):
        with torch.no_grad(), bench.variant(amateur) as model:
            assert type(model) is acd_class and str(model.acd_contrast.amateur) == f"{amateur}2"
            log_probs = model(ids).logits
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 12))


def test_hflm_scoring_of_acd_is_the_gathered_acd_log_probs(tiny_gpt2: Path) -> None:
    """HFLM's log_softmax leaves ACD's log-probs as they are: both sides score the same distribution."""
    bench = Bench(BenchOptions(model=str(tiny_gpt2), device="cpu"))
    ids = bench.token_ids(3, 10)
    log_likelihood, is_greedy = bench.score("head", ids)
    with torch.no_grad(), bench.variant("head") as model:
        log_probs = model(ids).logits[:, :-1]
    expected = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)
    torch.testing.assert_close(log_likelihood, expected, atol=1e-4, rtol=1e-6)
    assert is_greedy.shape == (3,) and is_greedy.dtype == torch.bool
    plain_ll, _ = hflm_log_likelihood(AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval(), ids)
    assert not torch.allclose(plain_ll, log_likelihood)


def test_paired_ratio_is_the_median_of_back_to_back_ratios() -> None:
    assert paired_ratio([2.0, 3.0, 30.0], [1.0, 2.0, 10.0]) == 2.0
