"""A separate small LM as the amateur (contrastive decoding, Li et al. 2022), inside the ACD model's forward.

The amateur model runs beside the expert's body in the same ``forward`` call, on the same
input ids, attention mask and positions, and keeps its own KV cache. That cache rides inside
the expert's: :class:`PairCache` *is* the expert's ``DynamicCache`` and carries the amateur's,
so everything ``generate()`` does to the cache (beam search's ``reorder_cache``, cropping,
batch expansion) reaches both, and no decoding loop of our own is needed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, PretrainedConfig
from transformers.modeling_outputs import CausalLMOutputWithPast

from acd.errors import UsageError

# The name of the KV cache in a forward's inputs and outputs: transformers 5.24 renamed ``past_key_values``
# to ``cache`` (generate() passes ``cache=``), earlier 5.x releases use ``past_key_values``.
CACHE = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"

# Inputs that describe positions of the same tokens: the amateur must see what the expert sees.
SHARED_INPUTS = ("position_ids", "cache_position")


class PairCache(DynamicCache):
    """The expert's KV cache, with the amateur model's in ``amateur``: every cache operation applies to both."""

    def __init__(self, config: PretrainedConfig, amateur_config: PretrainedConfig) -> None:
        super().__init__(config=config)
        self.amateur = DynamicCache(config=amateur_config)

    def reset(self) -> None:
        super().reset()
        self.amateur.reset()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        super().reorder_cache(beam_idx)
        self.amateur.reorder_cache(beam_idx)

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self.amateur.crop(tokens_to_remove)

    def batch_repeat_interleave(self, repeats: int) -> None:
        super().batch_repeat_interleave(repeats)
        self.amateur.batch_repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        super().batch_select_indices(indices)
        self.amateur.batch_select_indices(indices)


def pair_cache(model: nn.Module, amateur: nn.Module, cache: Any, use_cache: bool) -> PairCache | None:
    """The cache to run both models with: a fresh :class:`PairCache` for a new sequence, the given one after.

    ``generate()`` starts every sequence with an empty plain ``DynamicCache``; the forward hands
    back the PairCache in its output, which ``generate()`` keeps for the following steps.
    """
    if not use_cache:
        return None
    if isinstance(cache, PairCache):
        return cache
    if cache is None or (type(cache) is DynamicCache and cache.get_seq_length() == 0):
        return PairCache(model.config, amateur.config)
    raise UsageError(
        f"{CACHE}={type(cache).__name__} is not allowed with amateur='model': the amateur model needs its own "
        "cache beside the expert's; use the default dynamic cache (no cache_implementation, no prefilled cache)"
    )


def amateur_model_logits(
    model: nn.Module,
    amateur: nn.Module,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    logits_to_keep: int | torch.Tensor,
    inputs: dict[str, Any],
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The amateur model's logits at the kept positions, and the expert's inputs with the shared cache in them."""
    if input_ids is None:
        raise UsageError("amateur='model' needs input_ids: inputs_embeds belong to the expert's embedding alone")
    use_cache = inputs.get("use_cache")
    if use_cache is None:
        use_cache = getattr(model.config, "use_cache", True)
    cache = pair_cache(model, amateur, inputs.get(CACHE), bool(use_cache))
    shared = {name: inputs[name] for name in SHARED_INPUTS if inputs.get(name) is not None}
    output = amateur(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=bool(use_cache), logits_to_keep=logits_to_keep,
        return_dict=True, **{CACHE: None if cache is None else cache.amateur}, **shared,
    )
    return output.logits, {**inputs, CACHE: cache, "use_cache": bool(use_cache)}
