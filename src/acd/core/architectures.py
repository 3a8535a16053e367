"""One mapping from architecture to where its blocks and its final norm live.

Adding an architecture is one entry here, never a subclass: an exit on layer L reads
``final_norm(hidden_states[L])``, so all the code needs is the final norm's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from acd.errors import UsageError


@dataclass(frozen=True)
class Architecture:
    layers: str
    final_norm: str


ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture(layers="transformer.h", final_norm="transformer.ln_f"),
    "gpt_neo": Architecture(layers="transformer.h", final_norm="transformer.ln_f"),
    "llama": Architecture(layers="model.layers", final_norm="model.norm"),
    "mistral": Architecture(layers="model.layers", final_norm="model.norm"),
    "qwen2": Architecture(layers="model.layers", final_norm="model.norm"),
}


def architecture_of(model: nn.Module) -> Architecture:
    return architecture_for(getattr(model.config, "model_type", None))


def architecture_for(model_type: str | None) -> Architecture:
    """The entry for a config's ``model_type`` (checkable before the weights are loaded)."""
    if model_type not in ARCHITECTURES:
        raise UsageError(
            f"model_type={model_type!r} is not supported: supported are {', '.join(sorted(ARCHITECTURES))} "
            "(add one line to acd.core.architectures.ARCHITECTURES)"
        )
    return ARCHITECTURES[model_type]


def final_norm(model: nn.Module) -> nn.Module:
    return model.get_submodule(architecture_of(model).final_norm)


def num_layers(model: nn.Module) -> int:
    return len(model.get_submodule(architecture_of(model).layers))
