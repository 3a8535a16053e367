"""Exits of a decoder-only LM, and the ACD model: any *ForCausalLM whose forward returns ACD log-probs.

An *exit* is a layer L and a head kind: ``head`` (a trained exit head) or ``lens`` (the
model's own ``lm_head``). Both read ``final_norm(hidden_states[L])``; at the last layer the
normed state is the model's ``last_hidden_state``, so the lens exit at the last layer is
exactly the original model. The amateur is one exit, a per-position choice among candidate
exits (:class:`DynamicAmateur`), or a separate small LM (:class:`ModelAmateur`).

The ACD model is the loaded model itself with one mixin on top of its class
(:func:`make_auto_contrastive`): only ``forward`` changes, so ``generate()`` with every
strategy and KV cache, ``HFLM`` and any code that calls a causal LM work unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from acd.core.architectures import final_norm, num_layers
from acd.core.amateur_model import CACHE, amateur_model_logits
from acd.core.contrast import acd_log_probs, compute_dtype
from acd.core.spec import check_alpha, check_amateur_temperature, check_min_candidates
from acd.core.dynamic import select_amateur
from acd.errors import UsageError
from acd.core.heads import ExitHeads

EXIT_KINDS = ("head", "lens")


_EXIT_NAME = re.compile(r"(head|lens)(\d+)")


@dataclass(frozen=True)
class Exit:
    """Where a next-token distribution is read off: layer L (1..n_layers) through a head kind."""

    layer: int
    kind: str = "head"

    def __str__(self) -> str:
        return f"{self.kind}{self.layer}"

    @classmethod
    def parse(cls, name: str) -> Exit:
        """The exit a name such as ``head12`` or ``lens24`` stands for: the one grammar of exit names."""
        match = _EXIT_NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise UsageError(f"exit={name!r} is not an exit name: use head<L> or lens<L>, e.g. head12")
        return cls(int(match.group(2)), match.group(1))


@dataclass(frozen=True)
class DynamicAmateur:
    """DoLa-style amateur (Chuang et al. 2023): at each position, the candidate exit whose distribution
    is furthest from the expert's by Jensen-Shannon divergence."""

    candidates: tuple[Exit, ...]

    def __str__(self) -> str:
        return "dynamic:" + "+".join(str(exit) for exit in self.candidates)


@dataclass(frozen=True)
class ModelAmateur:
    """A separate small LM sharing the tokenizer (Li et al. 2022); the ACD model holds it as ``acd_amateur_model``."""

    name: str

    def __str__(self) -> str:
        return f"model:{self.name}"


Amateur = Exit | DynamicAmateur | ModelAmateur


@dataclass(frozen=True)
class Contrast:
    """What the ACD model computes: the expert alone (``amateur=None``) or p_ACD(expert, amateur)."""

    expert: Exit
    amateur: Amateur | None = None
    alpha: float = 0.1
    min_candidates: int = 1
    keep_tail: bool = True
    amateur_temperature: float = 1.0

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_min_candidates(self.min_candidates)
        check_amateur_temperature(self.amateur_temperature)

    def exits(self) -> list[Exit]:
        """The exits of this model's body the contrast reads (a separate amateur model reads none)."""
        if isinstance(self.amateur, Exit):
            return [self.expert, self.amateur]
        if isinstance(self.amateur, DynamicAmateur):
            return [self.expert, *self.amateur.candidates]
        return [self.expert]


def check_exit(n_layers: int, heads: ExitHeads | None, exit: Exit, role: str) -> None:
    """Raise UsageError unless ``exit`` exists on a model of ``n_layers`` layers with these heads."""
    if exit.kind not in EXIT_KINDS:
        raise UsageError(f"{role}={exit.kind!r} is not allowed: use one of {', '.join(EXIT_KINDS)}")
    if isinstance(exit.layer, bool) or not isinstance(exit.layer, int) or not 1 <= exit.layer <= n_layers:
        raise UsageError(f"layer={exit.layer!r} is out of range: allowed 1..{n_layers} for this model ({role})")
    if exit.kind == "head" and (heads is None or exit.layer not in heads):
        trained = "no heads were given" if heads is None else f"trained exits are {heads.exit_layers}"
        raise UsageError(
            f"layer={exit.layer} has no trained head for {role}='head' ({trained}); "
            f"train one, pick a trained layer, or use {role}='lens'"
        )


def check_contrast(n_layers: int, heads: ExitHeads | None, contrast: Contrast) -> None:
    """Every exit ``contrast`` reads exists on a model of ``n_layers`` layers with these heads."""
    check_exit(n_layers, heads, contrast.expert, "expert")
    if isinstance(contrast.amateur, DynamicAmateur) and not contrast.amateur.candidates:
        raise UsageError("candidate_layers=[] is not allowed: layer='dynamic' needs at least one exit layer")
    for exit in contrast.exits()[1:]:
        check_exit(n_layers, heads, exit, "amateur")


def hidden_at(model: nn.Module, body_output: Any, layer: int, keep: slice | torch.Tensor) -> torch.Tensor:
    """final_norm(hidden_states[layer]) at the kept positions; the last layer is already normed."""
    if layer == num_layers(model):
        return body_output.last_hidden_state[:, keep]
    return final_norm(model)(body_output.hidden_states[layer][:, keep])


# Up to this many rows a vocabulary projection is written ``weight @ hidden.T``: for a few rows
# ``F.linear`` (MKL on CPU) first packs the whole weight matrix, which costs more than the product
# (measured here, one thread, 50257 x 1024: 4 rows 198 ms against 95 ms, 32 rows 507 against 405).
FEW_ROWS = 64


# cuBLAS runs its fast Hopper/Ampere GEMM kernels only when an output row's length in elements is a multiple
# of 8 (16 bytes in bfloat16). GPT-2's 50257-token vocabulary is not, and a head's product of 4096 rows fell
# back to an sm75 kernel at ~100 TFLOP/s on an H200 (scripts/torch_profile.py); padding the weight to a
# multiple of ALIGN rows and slicing the logits costs one copy of the weight.
ALIGN = 64


def project(head: nn.Linear, hidden: torch.Tensor, aligned: bool | None = None) -> torch.Tensor:
    """``head(hidden)``: a few rows (a generation step, a continuation) without packing the weight; many
    rows on a GPU (``aligned`` None) or when ``aligned``, into logits rows padded to ALIGN, then sliced."""
    rows = hidden.flatten(0, -2)
    if rows.shape[0] <= FEW_ROWS:
        logits = torch.mm(head.weight, rows.t()).t()
        if head.bias is not None:
            logits = logits + head.bias
        return logits.reshape(*hidden.shape[:-1], -1)
    vocab = head.weight.shape[0]
    if not (hidden.is_cuda if aligned is None else aligned) or vocab % ALIGN == 0:
        return head(hidden)
    pad = -vocab % ALIGN
    bias = None if head.bias is None else F.pad(head.bias, (0, pad))
    return F.linear(hidden, F.pad(head.weight, (0, 0, 0, pad)), bias)[..., :vocab]


def exit_logits(
    model: nn.Module, heads: ExitHeads | None, exit: Exit, body_output: Any, keep: slice | torch.Tensor
) -> torch.Tensor:
    """Logits of one exit, computed only at the kept positions."""
    return project(exit_head(model, heads, exit), hidden_at(model, body_output, exit.layer, keep))


def exit_head(model: nn.Module, heads: ExitHeads | None, exit: Exit) -> nn.Module:
    """The linear map of an exit: the model's lm_head (lens) or the trained head on its layer."""
    return model.get_output_embeddings() if exit.kind == "lens" else heads[exit.layer]


def positions_to_keep(logits_to_keep: int | torch.Tensor) -> slice | torch.Tensor:
    """transformers' convention: an int keeps the last N positions (0 keeps all), a tensor indexes them."""
    if isinstance(logits_to_keep, int):
        return slice(-logits_to_keep, None) if logits_to_keep else slice(None)
    return logits_to_keep


def run_body(model: nn.Module, layers: Iterable[int] | None = None, **inputs: Any) -> Any:
    """One pass of the transformer body, keeping every layer's hidden state (references, not copies).

    ``layers`` keeps only those intermediate states (``hidden_states[L]`` stays indexed by layer,
    the others are None on models that support selecting them), so a long sequence does not hold
    every layer's activations until the heads have run.
    """
    inputs.pop("output_hidden_states", None)
    inputs.pop("return_dict", None)
    wanted: bool | list[int] = True if layers is None else sorted(set(layers))
    return model.base_model(output_hidden_states=wanted, return_dict=True, **inputs)


def body_layers(model: nn.Module, contrast: Contrast) -> list[int]:
    """The intermediate layers whose hidden states the contrast reads (the last layer's comes anyway)."""
    return [exit.layer for exit in contrast.exits() if exit.layer != num_layers(model)]


def contrast_logits(
    model: nn.Module,
    heads: ExitHeads | None,
    contrast: Contrast,
    body_output: Any,
    keep: slice | torch.Tensor,
    amateur_model_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """The logits the ACD model returns: plain expert logits, or ACD log-probs (float32 at least).

    ``amateur_model_output`` is the separate amateur model's logits at the kept positions
    (``amateur='model'``). A dynamic amateur is chosen per position inside the chunks below.

    Scoring a long batch needs the contrast at every position. It runs over a few rows at a
    time (:func:`contrast_chunk_elements`), so its vocabulary-wide temporaries stay small and are
    reused instead of each costing a fresh batch-sized allocation, and the log-probs overwrite
    the expert logits, which are this call's own tensor (unless autograd needs them or the
    model runs in half precision, whose log-probs are float32).
    """
    if contrast.amateur is None:
        return exit_logits(model, heads, contrast.expert, body_output, keep)
    if isinstance(contrast.amateur, Exit):
        expert, amateur = exit_pair_logits(model, heads, contrast, body_output, keep)
    else:
        expert = exit_logits(model, heads, contrast.expert, body_output, keep)
        amateur = amateur_model_output if isinstance(contrast.amateur, ModelAmateur) else None
        if isinstance(contrast.amateur, ModelAmateur) and amateur is None:
            raise ValueError("amateur='model' needs the amateur model's logits (amateur_model_output)")
    candidates = None
    if isinstance(contrast.amateur, DynamicAmateur):
        # Normed hidden states are d_model wide: compute once; the vocabulary-wide logits per chunk.
        candidates = [
            (exit_head(model, heads, exit), hidden_at(model, body_output, exit.layer, keep))
            for exit in contrast.amateur.candidates
        ]
    dtype = compute_dtype(expert) if amateur is None else compute_dtype(expert, amateur)
    in_place = expert.dtype == dtype and not expert.requires_grad
    log_probs = expert if in_place else torch.empty(expert.shape, dtype=dtype, device=expert.device)
    # Chunks of whole rows (batch x positions flattened) are contiguous: a slice along positions
    # alone is strided when batch > 1, and each op would first copy it.
    vocab = expert.shape[-1]
    rows_out, rows_expert = log_probs.view(-1, vocab), expert.reshape(-1, vocab)
    rows_amateur = None if amateur is None else amateur.reshape(-1, vocab)
    rows_candidates = [(head, hidden.flatten(0, -2)) for head, hidden in candidates or ()]
    step = max(1, contrast_chunk_elements(expert.device) // vocab)
    for start in range(0, rows_out.shape[0], step):
        rows = slice(start, start + step)
        if rows_amateur is not None:
            chunk_amateur = rows_amateur[rows]
        else:
            chunk_amateur, _ = select_amateur(
                rows_expert[rows], [project(head, hidden[rows]) for head, hidden in rows_candidates]
            )
        if contrast.amateur_temperature != 1.0:
            # A selected candidate is log-softmaxed: dividing log-probs by T divides the logits by T up to
            # one number per row, which the contrast cancels.
            chunk_amateur = chunk_amateur / contrast.amateur_temperature
        acd_log_probs(
            rows_expert[rows], chunk_amateur, alpha=contrast.alpha,
            min_candidates=contrast.min_candidates, keep_tail=contrast.keep_tail, out=rows_out[rows],
        )
    return log_probs


def exit_pair_logits(
    model: nn.Module, heads: ExitHeads | None, contrast: Contrast, body_output: Any, keep: slice | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expert and amateur logits at the kept positions.

    Two lens exits share the lm_head. At one position per sequence (a generation step) reading
    its weights is nearly the whole cost, so one product over both hidden states reads them once.
    """
    exits = (contrast.expert, contrast.amateur)
    if not all(exit.kind == "lens" for exit in exits):
        return tuple(exit_logits(model, heads, exit, body_output, keep) for exit in exits)
    lm_head = model.get_output_embeddings()
    expert_hidden, amateur_hidden = (hidden_at(model, body_output, exit.layer, keep) for exit in exits)
    if expert_hidden.shape[1] != 1:
        return project(lm_head, expert_hidden), project(lm_head, amateur_hidden)
    logits = project(lm_head, torch.cat([expert_hidden, amateur_hidden], dim=1))
    return logits[:, :1], logits[:, 1:]


def contrast_chunk_elements(device: torch.device) -> int:
    """Elements of one chunk of the contrast: about 80 rows of a 50k vocabulary on CPU (16 MB of
    float32 per temporary), on an accelerator large.

    Each chunk costs a dozen vocabulary-wide ops, and on CPU each op is an OpenMP parallel region
    whose threads meet at a barrier: on a busy machine a thread that lost its core holds the others
    for a time slice (~20 ms per op measured here at load 6 on 2 cores, against under 2 ms
    quiet), so fewer, larger chunks win; 4 MB chunks took twice as long as 16 MB ones there.
    """
    return 1 << 22 if device.type == "cpu" else 1 << 26


class AutoContrastiveMixin:
    """Put in front of a *ForCausalLM class: ``forward`` returns ``contrast_logits`` as logits."""

    acd_heads: ExitHeads | None
    acd_contrast: Contrast
    acd_amateur_model: nn.Module | None

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        # Named here so that generate() builds positions from the attention mask (it reads this signature):
        # with left padding a row's first real token then sits at position 0, as in a batch of one.
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        amateur_output = None
        if isinstance(self.acd_contrast.amateur, ModelAmateur):
            amateur_output, kwargs = amateur_model_logits(
                self, self.acd_amateur_model, input_ids, attention_mask, logits_to_keep, kwargs
            )
        body_output = run_body(
            self, body_layers(self, self.acd_contrast), input_ids=input_ids, attention_mask=attention_mask, **kwargs
        )
        logits = contrast_logits(
            self, self.acd_heads, self.acd_contrast, body_output, positions_to_keep(logits_to_keep), amateur_output
        )
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                torch.log_softmax(logits[:, :-1].float(), dim=-1).flatten(0, 1),
                labels[:, 1:].flatten().to(logits.device),
                ignore_index=-100,
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE: getattr(body_output, CACHE)})

    def set_contrast(self, **changes: Any) -> Contrast:
        """Change alpha, layer exits, etc. in place, checked as at load time."""
        contrast = replace(self.acd_contrast, **changes)
        if isinstance(contrast.amateur, ModelAmateur) and getattr(self, "acd_amateur_model", None) is None:
            raise UsageError("amateur='model' is not allowed here: this ACD model was loaded without amateur_model")
        check_contrast(num_layers(self), self.acd_heads, contrast)
        self.acd_contrast = contrast
        return contrast


@functools.cache
def _auto_contrastive_class(base_class: type) -> type:
    return type(f"AutoContrastive{base_class.__name__}", (AutoContrastiveMixin, base_class), {})


def make_auto_contrastive(
    model: nn.Module, contrast: Contrast, heads: ExitHeads | None = None, amateur_model: nn.Module | None = None
) -> nn.Module:
    """Turn a loaded causal LM into the ACD model in place (and return it).

    ``amateur_model`` (for ``ModelAmateur``) becomes a submodule, so ``.to()`` and ``.eval()`` reach it.
    """
    if heads is not None:
        heads.check_compatible(model)
        lm_head = model.get_output_embeddings()
        heads = heads.to(device=lm_head.weight.device, dtype=lm_head.weight.dtype).requires_grad_(False)
    if not isinstance(model, AutoContrastiveMixin):
        model.__class__ = _auto_contrastive_class(type(model))
    model.acd_heads = heads
    model.acd_amateur_model = amateur_model
    model.acd_contrast = Contrast(expert=contrast.expert)  # replaced, checked, just below
    model.set_contrast(**{f: getattr(contrast, f) for f in contrast.__dataclass_fields__})
    return model
