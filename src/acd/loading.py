"""``acd.load``: a hub id or local directory in, the ACD model and its tokenizer out."""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from acd.architectures import architecture_for
from acd.errors import OFFLINE_RUN, UsageError
from acd.heads import ExitHeads
from acd.multiexit import load_heads
from acd.model import Contrast, Exit, check_contrast, make_auto_contrastive

EXPERT_KINDS = ("original", "new")
AMATEUR_KINDS = ("head", "lens")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": "auto"}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UsageError(f"dtype={dtype!r} is not allowed: use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def expert_exit(expert: str, n_layers: int) -> Exit:
    """``original`` is the pretrained lm_head (the lens at the last layer); ``new`` a trained final head."""
    if expert not in EXPERT_KINDS:
        raise UsageError(f"expert={expert!r} is not allowed: use one of {', '.join(EXPERT_KINDS)}")
    return Exit(n_layers, "lens" if expert == "original" else "head")


def check_kinds(expert: str | None, amateur: str | None) -> None:
    """Fail on a misspelt kind before anything is loaded."""
    if expert is not None and expert not in EXPERT_KINDS:
        raise UsageError(f"expert={expert!r} is not allowed: use one of {', '.join(EXPERT_KINDS)}")
    if amateur is not None and amateur not in AMATEUR_KINDS:
        raise UsageError(f"amateur={amateur!r} is not allowed: use one of {', '.join(AMATEUR_KINDS)}")


def _cannot_load(name: str, error: Exception) -> UsageError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UsageError(
        f"model={name!r} cannot be loaded ({first}); offline, point model at a local directory "
        f"(one written by save_pretrained or `acd tiny-model DIR`), {OFFLINE_RUN}"
    )


def load_config(model_name_or_path: str | os.PathLike[str]) -> PretrainedConfig:
    """The model's config alone (seconds, no weights): to check layers and context before real work."""
    try:
        return AutoConfig.from_pretrained(str(model_name_or_path))
    except (OSError, ValueError) as error:
        raise _cannot_load(str(model_name_or_path), error) from None


def load_tokenizer(model_name_or_path: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    """The model's tokenizer alone (the chunk stage needs no weights)."""
    try:
        return AutoTokenizer.from_pretrained(str(model_name_or_path))
    except (OSError, ValueError) as error:
        raise _cannot_load(str(model_name_or_path), error) from None


def load_pretrained(
    model_name_or_path: str | os.PathLike[str], device: str | None = None, dtype: str | torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The frozen base model (eval mode) and its tokenizer, with a pad token for batching."""
    torch_dtype = resolve_dtype(dtype)
    name = str(model_name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, **({"dtype": torch_dtype} if torch_dtype else {}))
    except (OSError, ValueError) as error:
        raise _cannot_load(name, error) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device or default_device()).eval().requires_grad_(False)
    return model, tokenizer


def load(
    model_name_or_path: str | os.PathLike[str],
    *,
    heads: str | os.PathLike[str] | ExitHeads | None = None,
    layer: int | None = None,
    alpha: float = 0.1,
    expert: str | None = None,
    amateur: str | None = None,
    min_candidates: int = 1,
    keep_tail: bool = True,
    amateur_temperature: float = 1.0,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``model_name_or_path`` as an ACD model contrasting its expert with the exit at ``layer``.

    ``layer=None`` gives the plain expert. ``expert`` defaults to ``new`` when ``heads`` hold
    a final-layer head (the paper) and to ``original`` otherwise; ``amateur`` defaults to
    ``head`` when heads are given and to ``lens`` otherwise, so ACD works on any model.
    """
    check_kinds(expert, amateur)
    # Settings first: a typo fails before minutes of loading.
    Contrast(expert=Exit(1), alpha=alpha, min_candidates=min_candidates, amateur_temperature=amateur_temperature)
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 1):
        raise UsageError(f"layer={layer!r} is out of range: it must be an integer >= 1 (an exit layer)")
    exit_heads = heads if isinstance(heads, ExitHeads) or heads is None else load_heads(heads)
    # The config (seconds, no weights) is enough to check the heads and both exits.
    config = load_config(model_name_or_path)
    architecture_for(config.model_type)
    n_layers = config.num_hidden_layers
    if exit_heads is not None:
        exit_heads.check_fits(config.vocab_size, config.hidden_size, n_layers)
    if expert is None:
        expert = "new" if exit_heads is not None and n_layers in exit_heads else "original"
    if amateur is None:
        amateur = "head" if exit_heads is not None else "lens"
    contrast = Contrast(
        expert=expert_exit(expert, n_layers),
        amateur=None if layer is None else Exit(layer, amateur),
        alpha=alpha,
        min_candidates=min_candidates,
        keep_tail=keep_tail,
        amateur_temperature=amateur_temperature,
    )
    check_contrast(n_layers, exit_heads, contrast)
    model, tokenizer = load_pretrained(model_name_or_path, device=device, dtype=dtype)
    return make_auto_contrastive(model, contrast, exit_heads), tokenizer


def describe(model: Any) -> dict[str, Any]:
    """The settings of an ACD model, for logs and metrics files."""
    contrast: Contrast = model.acd_contrast
    return {
        "expert": str(contrast.expert),
        "amateur": None if contrast.amateur is None else str(contrast.amateur),
        "alpha": contrast.alpha,
        "min_candidates": contrast.min_candidates,
        "keep_tail": contrast.keep_tail,
        "amateur_temperature": contrast.amateur_temperature,
    }
