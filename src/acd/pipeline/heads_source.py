"""params.yaml ``heads.source``: train the exit heads (the paper) or import released ones.

With a hub id or local directory of a released multi-exit checkpoint (``ibm/gpt2-medium-multiexit``),
the ``train_heads`` stage writes models/heads from its ``lm_head_<L>`` weights instead of training,
and the ``chunk`` stage builds no corpus. The heads read ``final_norm(hidden_states[L])`` of the
checkpoint's own base model, so that base must be ``model``: the import checks the shapes and the
tensors every exit reads (input embeddings, final norm) against ``model`` and refuses a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from acd.core.architectures import architecture_of, num_layers
from acd.errors import UsageError
from acd.core.heads import ExitHeads

TRAIN = "train"
WHERE = "heads.source"


@dataclass(frozen=True)
class HeadsParams:
    """params.yaml ``heads``: ``source: train`` (the paper) or a released multi-exit checkpoint."""

    source: str = TRAIN

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise UsageError(f"{WHERE}={self.source!r} is not allowed: use {TRAIN!r} or the hub id or local directory "
                             "of a released multi-exit checkpoint")

    @property
    def imported(self) -> bool:
        return self.source != TRAIN


def heads_params(raw: dict[str, Any]) -> HeadsParams:
    """The ``heads`` section; a params file without one trains (the paper)."""
    from acd.pipeline.params import section

    return section(raw, "heads", HeadsParams) if "heads" in raw else HeadsParams()


def base_keys(model: nn.Module) -> list[str]:
    """Names of the tensors every exit reads besides its head: the input embeddings and the final norm."""
    norm = architecture_of(model).final_norm + "."
    embedding = model.get_input_embeddings().weight
    return [name for name, param in model.named_parameters() if name.startswith(norm) or param is embedding]


def check_base(source: str, heads: ExitHeads, model: nn.Module, model_name: str) -> list[str]:
    """Refuse released heads whose base model is not ``model``; return the base tensors compared."""
    from acd.core.multiexit import read_tensors, weights_file

    vocab_size, hidden_size = model.get_output_embeddings().weight.shape
    theirs = (heads.config.vocab_size, heads.config.hidden_size, heads.config.num_layers)
    if theirs != (vocab_size, hidden_size, num_layers(model)):
        raise UsageError(
            f"{WHERE}={source!r} does not fit model={model_name!r}: the checkpoint has vocab {theirs[0]}, hidden size "
            f"{theirs[1]}, {theirs[2]} layers; the model has vocab {vocab_size}, hidden size {hidden_size}, "
            f"{num_layers(model)} layers; set model to the checkpoint's base model"
        )
    ours = dict(model.named_parameters())
    keys = base_keys(model)
    released = read_tensors(weights_file(source, WHERE), set(keys).__contains__, WHERE)
    if not released:
        raise UsageError(f"{WHERE}={source!r} holds none of {', '.join(keys)}: cannot check that its base model is "
                         f"model={model_name!r}")
    for key, tensor in sorted(released.items()):
        mine = ours[key].detach().float().cpu()
        # Loose enough for a float16 copy of the same weights, far tighter than two different models.
        if tensor.shape != mine.shape or not torch.allclose(tensor.float(), mine, rtol=1e-3, atol=1e-4):
            raise UsageError(f"{WHERE}={source!r} was trained on another base model than model={model_name!r} "
                             f"({key} differs); set model to the checkpoint's base model")
    return sorted(released)


def import_heads(source: str, model_name: str) -> tuple[ExitHeads, list[str]]:
    """Released heads checked against ``model``, and the names of the base tensors that were compared."""
    from acd.core.loading import load_pretrained
    from acd.core.multiexit import import_multiexit_heads

    heads = import_multiexit_heads(source, WHERE)  # bad paths and layouts fail before the model loads
    model, _ = load_pretrained(model_name, device="cpu")
    checked = check_base(source, heads, model, model_name)
    heads.config.base_model = model_name
    return heads, checked
