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

from acd.core.architectures import architecture_for
from acd.errors import OFFLINE_RUN, UsageError
from acd.io import package_data
from acd.core.heads import ExitHeads
from acd.core.multiexit import load_heads
from acd.core.model import Amateur, Contrast, DynamicAmateur, Exit, ModelAmateur, check_contrast, make_auto_contrastive
from acd.core.spec import DYNAMIC, ContrastSpec

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
    return Exit(n_layers, "lens" if expert == "original" else "head")


def _cannot_load(name: str, error: Exception, param: str = "model") -> UsageError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UsageError(
        f"{param}={name!r} cannot be loaded ({first}); offline, point {param} at a local directory "
        f"(one written by save_pretrained or `acd tiny-model DIR`), {OFFLINE_RUN}"
    )


def load_config(model_name_or_path: str | os.PathLike[str], param: str = "model") -> PretrainedConfig:
    """The model's config alone (seconds, no weights): to check layers and context before real work."""
    try:
        return AutoConfig.from_pretrained(package_data(model_name_or_path))
    except (OSError, ValueError) as error:
        raise _cannot_load(str(model_name_or_path), error, param) from None


def load_tokenizer(model_name_or_path: str | os.PathLike[str], param: str = "model") -> PreTrainedTokenizerBase:
    """The model's tokenizer alone (the chunk stage needs no weights)."""
    try:
        return AutoTokenizer.from_pretrained(package_data(model_name_or_path))
    except (OSError, ValueError) as error:
        raise _cannot_load(str(model_name_or_path), error, param) from None


def load_pretrained(
    model_name_or_path: str | os.PathLike[str], device: str | None = None, dtype: str | torch.dtype | None = None,
    param: str = "model",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The frozen base model (eval mode) and its tokenizer, with a pad token for batching."""
    torch_dtype = resolve_dtype(dtype)
    name = str(model_name_or_path)
    path = package_data(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **({"dtype": torch_dtype} if torch_dtype else {}))
    except (OSError, ValueError) as error:
        raise _cannot_load(name, error, param) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device or default_device()).eval().requires_grad_(False)
    return model, tokenizer


def check_shared_vocabulary(model_name_or_path: str | os.PathLike[str], amateur_model: str | os.PathLike[str]) -> None:
    """Contrastive decoding compares two models token id by token id: same tokenizer vocabulary, same logit size.

    Tokenizers and configs load in seconds, so a mismatch fails before any weights are read.
    """
    expert_vocab = load_tokenizer(model_name_or_path).get_vocab()
    amateur_vocab = load_tokenizer(amateur_model, "amateur_model").get_vocab()
    if expert_vocab != amateur_vocab:
        differ = len(set(expert_vocab.items()) ^ set(amateur_vocab.items()))
        raise UsageError(
            f"amateur_model={str(amateur_model)!r} does not share the expert's tokenizer ({len(amateur_vocab)} vs "
            f"{len(expert_vocab)} tokens, {differ} (token, id) pairs differ): pick a smaller model of the same family"
        )
    sizes = [load_config(name, param).get_text_config().vocab_size
             for name, param in ((model_name_or_path, "model"), (amateur_model, "amateur_model"))]
    if sizes[0] != sizes[1]:
        raise UsageError(
            f"amateur_model={str(amateur_model)!r} has {sizes[1]} output logits, the expert {sizes[0]}: "
            "the two must score the same vocabulary"
        )


def amateur_of(
    amateur: str, layer: int | str | None, candidate_layers: tuple[int, ...] | None, amateur_model: object
) -> Amateur | None:
    """The contrast's amateur: a separate model, a dynamic choice among exits, one exit, or none (``layer=None``)."""
    if amateur == "model":
        return ModelAmateur(str(amateur_model))
    if layer is None:
        return None
    if layer == DYNAMIC:
        return DynamicAmateur(tuple(Exit(candidate, amateur) for candidate in candidate_layers or ()))
    return Exit(layer, amateur)


def load(
    model_name_or_path: str | os.PathLike[str],
    *,
    heads: str | os.PathLike[str] | ExitHeads | None = None,
    spec: ContrastSpec | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    **knobs: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``model_name_or_path`` as an ACD model contrasting its expert with the exit at ``layer``.

    The contrast is ``spec``, or :class:`~acd.core.spec.ContrastSpec` built from ``knobs`` (``layer``,
    ``alpha``, ``expert``, ``amateur``, ...); ``layer=None`` gives the plain expert.
    """
    if spec is None:
        spec = ContrastSpec.from_kwargs(**knobs)  # settings first: a typo fails before minutes of loading
    elif knobs:
        raise UsageError(f"{sorted(knobs)[0]} is not allowed with spec=: set it on the ContrastSpec")
    exit_heads = heads if isinstance(heads, ExitHeads) or heads is None else load_heads(heads)
    # The config (seconds, no weights) is enough to check the heads and every exit.
    config = load_config(model_name_or_path)
    architecture_for(config.model_type)
    n_layers = config.num_hidden_layers
    if exit_heads is not None:
        exit_heads.check_fits(config.vocab_size, config.hidden_size, n_layers)
    amateur = spec.amateur or ("head" if exit_heads is not None else "lens")
    if spec.layer == DYNAMIC and amateur == "head":
        untrained = [c for c in spec.candidate_layers or () if exit_heads is None or c not in exit_heads]
        if untrained:
            trained = "no heads were given" if exit_heads is None else f"trained exits are {exit_heads.exit_layers}"
            raise UsageError(
                f"candidate_layers={list(spec.candidate_layers or ())} has no trained head for layers {untrained} "
                f"({trained}): pick trained layers, or use amateur='lens'"
            )
    if amateur == "model":
        check_shared_vocabulary(model_name_or_path, spec.amateur_model)
    expert = spec.expert or ("new" if exit_heads is not None and n_layers in exit_heads else "original")
    contrast = Contrast(
        expert=expert_exit(expert, n_layers),
        amateur=amateur_of(amateur, spec.layer, spec.candidate_layers, spec.amateur_model),
        alpha=spec.alpha,
        min_candidates=spec.min_candidates,
        keep_tail=spec.keep_tail,
        amateur_temperature=spec.amateur_temperature,
    )
    check_contrast(n_layers, exit_heads, contrast)
    model, tokenizer = load_pretrained(model_name_or_path, device=device, dtype=dtype)
    amateur_lm = None
    if amateur == "model":
        amateur_lm, _ = load_pretrained(spec.amateur_model, device=str(model.device), dtype=dtype,
                                        param="amateur_model")
    return make_auto_contrastive(model, contrast, exit_heads, amateur_lm), tokenizer


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
