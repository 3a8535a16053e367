"""The paper's four decoding strategies as ``generate()`` arguments, and batched generation.

We never write a decoding loop: ACD lives in the model's forward, so each strategy is
just transformers' own search or sampler over the ACD distribution.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from acd.errors import UsageError

STRATEGIES: dict[str, dict[str, Any]] = {
    "greedy": {"do_sample": False, "num_beams": 1},
    "beam": {"do_sample": False, "num_beams": 5},
    "top-k": {"do_sample": True, "top_k": 50},
    "top-p": {"do_sample": True, "top_p": 0.95, "top_k": 0},
}


def strategy_kwargs(strategy: str) -> dict[str, Any]:
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy={strategy!r} is not allowed: use one of {', '.join(STRATEGIES)}")
    return dict(STRATEGIES[strategy])


def empty_prompt(prompt: str) -> UsageError:
    """The one message for a prompt with no tokens (the model cannot predict from nothing)."""
    return UsageError(f"prompt={prompt!r} is not allowed: it must contain at least one token")


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.inference_mode()
def generate_new_tokens(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    strategy: str,
    max_new_tokens: int = 100,
    seed: int | None = None,
) -> torch.Tensor:
    """New token ids for ``prompts`` (left-padded batch, KV cache on), [batch, steps]; finished rows end in padding."""
    kwargs = strategy_kwargs(strategy)
    if seed is not None:
        torch.manual_seed(seed)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        inputs = tokenizer(list(prompts), return_tensors="pt", padding=True).to(model.device)
    finally:
        tokenizer.padding_side = padding_side
    for prompt, length in zip(prompts, inputs.attention_mask.sum(dim=1).tolist()):
        if length == 0:
            raise empty_prompt(prompt)
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        **kwargs,
    )
    return output[:, inputs.input_ids.shape[1] :]


def generated_lengths(new_tokens: torch.Tensor, eos_token_id: int | None) -> list[int]:
    """Tokens generated per row before the first EOS (generate pads finished rows after it)."""
    if eos_token_id is None:
        return [new_tokens.shape[1]] * new_tokens.shape[0]
    is_eos = new_tokens == eos_token_id
    first = is_eos.int().argmax(dim=1).tolist()  # 0 also when a row has no EOS
    return [index if found else new_tokens.shape[1] for index, found in zip(first, is_eos.any(dim=1).tolist())]


def generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    strategy: str,
    max_new_tokens: int = 100,
    seed: int | None = None,
) -> list[str]:
    """Continuations of ``prompts`` (left-padded batch, KV cache on), decoded without the prompt."""
    new_tokens = generate_new_tokens(model, tokenizer, prompts, strategy, max_new_tokens, seed)
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
