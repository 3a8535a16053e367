"""Generation over prompt files: every strategy with and without ACD, resumable, seeded, and the per-exit sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import acd.pipeline.generation as generation
import acd.pipeline.journal as journal_module
from acd.pipeline.decoding import STRATEGIES
from acd.errors import UsageError
from acd.pipeline.generation import (
    GenerationParams, batch_seed, generate_domains, generate_file, generate_layer_sweep, read_generations, read_prompt_sets,
)
from acd.pipeline.jsonl import write_jsonl
from acd.core.loading import load
from acd.pipeline.params import build

PROMPTS = [
    {"id": f"t-{i}", "domain": "t", "prompt": text, "reference": "and then it ended."}
    for i, text in enumerate(["The history of the city begins", "She opened the door and", "In 1905 the railway",
                              "The river flows", "Scientists reported on Monday that"])
]
SMALL = GenerationParams(max_new_tokens=4, batch_size=2)


@pytest.fixture()
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts" / "t.jsonl"
    write_jsonl(path, PROMPTS[:3])
    return path


@pytest.mark.parametrize("kind", ["plain", "acd"])
def test_every_strategy_runs(kind: str, tiny_gpt2: Path, gpt2_heads: Path, prompt_file: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, layer=None if kind == "plain" else 2, device="cpu")
    for strategy in STRATEGIES:
        (out,) = generate_domains(model, tokenizer, read_prompt_sets([prompt_file]), tmp_path / kind / strategy, tmp_path / "journal" / kind / strategy,
                                  model_name="tiny", kind=kind, strategy=strategy, params=SMALL, seed=0)
        rows = read_generations(out)
        assert [row["id"] for row in rows] == ["t-0", "t-1", "t-2"]
        assert all(row["reference"] == "and then it ended." and 0 <= row["n_tokens"] <= 4 for row in rows)
        settings = rows[0]["settings"]
        assert settings["strategy"] == strategy and settings["kind"] == kind and settings["expert"] == "head4"
        # Baselines record no contrast knobs: they do not depend on alpha or the amateur.
        assert ("alpha" in settings) == (kind == "acd") and ("amateur" in settings) == (kind == "acd")


def test_resume_after_interruption_equals_uninterrupted(tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    settings = generation.generation_settings(model, "tiny", "acd", "top-k", 6)
    whole = generate_file(model, tokenizer, PROMPTS, tmp_path / "whole.jsonl", journal=tmp_path / "j1.jsonl",
                          settings=settings, batch_size=2, seed=7)

    real, calls, kill_at = generation.generate_new_tokens, [], [3]

    def killable(*args, **kwargs):
        calls.append(1)
        if len(calls) in kill_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate_new_tokens", killable)
    out, journal = tmp_path / "resumed.jsonl", tmp_path / "j2.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_file(model, tokenizer, PROMPTS, out, journal=journal, settings=settings, batch_size=2, seed=7)
    assert not out.exists() and len(journal.read_text().splitlines()) == 1 + 4  # header + two batches kept
    with open(journal, "a") as handle:
        handle.write('{"id": "t-4", "contin')  # a torn last line from the kill
    calls.clear()
    kill_at.clear()
    generate_file(model, tokenizer, PROMPTS, out, journal=journal, settings=settings, batch_size=2, seed=7)
    assert len(calls) == 1  # only the last batch was decoded again
    assert out.read_bytes() == whole.read_bytes()


def test_journal_of_other_settings_is_not_reused(tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    journal = tmp_path / "journal.jsonl"
    settings = generation.generation_settings(model, "tiny", "acd", "top-p", 5)
    first = read_generations(generate_file(model, tokenizer, PROMPTS[:2], tmp_path / "a.jsonl", journal=journal,
                                           settings=settings, batch_size=2, seed=1))
    model.set_contrast(alpha=0.5)
    other = generation.generation_settings(model, "tiny", "acd", "top-p", 5)
    second = read_generations(generate_file(model, tokenizer, PROMPTS[:2], tmp_path / "b.jsonl", journal=journal,
                                            settings=other, batch_size=2, seed=1))
    assert [row["settings"]["alpha"] for row in first + second] == [0.1, 0.1, 0.5, 0.5]


def test_batch_seed_is_stable() -> None:
    assert batch_seed(0, "top-k", "wikitext", 3) == batch_seed(0, "top-k", "wikitext", 3)
    assert batch_seed(0, "top-k", "wikitext", 3) != batch_seed(0, "top-k", "wikitext", 4)
    assert 0 <= batch_seed(123, "x") < 2**31


def test_layer_sweep_decodes_each_exit_alone(tiny_gpt2: Path, gpt2_heads: Path, prompt_file: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, device="cpu")
    outs = generate_layer_sweep(model, tokenizer, read_prompt_sets([prompt_file]), tmp_path / "layers", tmp_path / "journal",
                                model_name="tiny", params=SMALL, seed=0)
    assert [path.relative_to(tmp_path / "layers").as_posix() for path in outs] == ["t/layer-02.jsonl", "t/layer-04.jsonl"]
    for path, layer in zip(outs, (2, 4)):
        settings = read_generations(path)[0]["settings"]
        assert settings["exit_layer"] == layer and settings["expert"] == f"head{layer}" and "amateur" not in settings


def test_generation_params() -> None:
    assert build(GenerationParams, {"strategies": ["greedy"]}, "generation").strategies == ["greedy"]
    with pytest.raises(UsageError, match=r"generation\.strategies: 'nucleus' is not allowed: use one of greedy, beam, top-k, top-p"):
        build(GenerationParams, {"strategies": ["nucleus"]}, "generation")
    with pytest.raises(UsageError, match=r"generation\.max_new_tokens=0 is out of range"):
        build(GenerationParams, {"max_new_tokens": 0}, "generation")


def test_a_journal_resumes_only_the_same_weights_and_code(tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed, then the heads are retrained (or the code changes): the rerun equals a run from an empty journal."""
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    settings = generation.generation_settings(model, "tiny", "acd", "greedy", 6)
    real, calls = generation.generate_new_tokens, []

    def killed_at_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    def run(out: str, journal: str) -> bytes:
        return generate_file(model, tokenizer, PROMPTS, tmp_path / out, journal=tmp_path / journal,
                             settings=settings, batch_size=2, seed=7).read_bytes()

    monkeypatch.setattr(generation, "generate_new_tokens", killed_at_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run("killed.jsonl", "journal.jsonl")
    monkeypatch.setattr(generation, "generate_new_tokens", real)
    with torch.no_grad():
        model.acd_heads[2].weight.mul_(-1.5)  # "retrained": same names and settings, other weights
    assert run("resumed.jsonl", "journal.jsonl") == run("fresh.jsonl", "empty.jsonl")

    calls.clear()
    monkeypatch.setattr(generation, "generate_new_tokens", killed_at_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run("killed.jsonl", "code.jsonl")
    monkeypatch.setattr(generation, "generate_new_tokens", real)
    monkeypatch.setattr(journal_module, "code_digest", lambda: "a fixed bug")
    assert journal_module.read_journal(tmp_path / "code.jsonl", journal_module.fingerprint(
        journal_module.weights_digest(model), prompts=[(row["id"], row["prompt"]) for row in PROMPTS],
        settings=settings, batch_size=2, seed=7)) == {}


def test_journals_are_removed_when_the_stage_is_done(tiny_gpt2: Path, gpt2_heads: Path, prompt_file: Path,
                                                     tmp_path: Path) -> None:
    model, tokenizer = load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    journal = tmp_path / "journal" / "acd" / "greedy"
    generate_domains(model, tokenizer, read_prompt_sets([prompt_file]), tmp_path / "out", journal, model_name="tiny",
                     kind="acd", strategy="greedy", params=SMALL, seed=0)
    assert (tmp_path / "out" / prompt_file.name).is_file() and not journal.exists()
