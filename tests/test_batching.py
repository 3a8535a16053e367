"""Batched generation (left padding) equals one prompt at a time, for every kind of amateur and for plain decoding.

A padded row's first real token must sit at position 0, as in a batch of one: transformers builds position_ids
from the attention mask only when the model's forward names ``position_ids``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from acd.core.loading import load, load_pretrained
from acd.pipeline.decoding import generate_batch
from acd.tools.tiny import make_tiny_model

PROMPTS = [
    "The",
    "In the middle of the night, the old lighthouse keeper climbed the stairs once more and looked out over the"
    " dark water, where the storm that had been building for three days was finally",
    "A short one about",
    "Numbers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22",
]


@pytest.fixture(scope="module")
def positional_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny GPT-2 whose position embeddings are large enough that a shifted position changes its output."""
    directory = make_tiny_model(tmp_path_factory.mktemp("positional"), arch="gpt2", n_layers=4, d_model=32, seed=7)
    model, _ = load_pretrained(directory, device="cpu")
    with torch.no_grad():
        model.transformer.wpe.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(7))
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def amateur_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("amateur"), arch="gpt2", n_layers=2, d_model=32, seed=3)


SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {"layer": None},
    "lens": {"layer": 2, "amateur": "lens"},
    "head": {"layer": 2, "amateur": "head"},
    "dynamic": {"layer": "dynamic", "amateur": "lens", "candidate_layers": [1, 2, 3]},
    "model": {"amateur": "model"},
}


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_batched_generation_equals_one_prompt_at_a_time(
    positional_gpt2: Path, amateur_lm: Path, heads_for, setting: str, strategy: str
) -> None:
    knobs = dict(SETTINGS[setting])
    heads = heads_for(positional_gpt2) if setting == "head" else None
    if setting == "model":
        knobs["amateur_model"] = str(amateur_lm)
    model, tokenizer = load(positional_gpt2, heads=heads, device="cpu", **knobs)
    model.double()  # float64: padding changes the GEMM shapes, so float32 near-ties in beam scores could flip
    batched = generate_batch(model, tokenizer, PROMPTS, strategy, max_new_tokens=12)
    alone = [generate_batch(model, tokenizer, [prompt], strategy, max_new_tokens=12)[0] for prompt in PROMPTS]
    assert batched == alone
