"""Import the multi-exit checkpoints the ACD authors released (``ibm/gpt2-medium-multiexit``, ...).

Those repositories hold the full model plus one linear head per exit layer, stored next to
the base weights as ``name_to_lm_exit_head.lm_head_<L>.weight``, with the exit layers listed
in ``config.json`` as ``lm_head_layer_indices`` (``"original"`` marks the pretrained head).
We read just those tensors into :class:`ExitHeads`, so users can skip head training.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from acd.errors import UsageError
from acd.core.heads import CONFIG_NAME, ExitHeads, HeadsConfig

HEAD_KEY = re.compile(r"(?:^|\.)lm_head_(\d+)\.weight$")
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _fetch(source: str, filename: str, where: str = "heads") -> Path | None:
    """A file of a local checkpoint directory or of a hub repository (None when absent)."""
    local = Path(source) / filename
    if local.is_file():
        return local
    if Path(source).is_dir():
        return None
    if Path(source).exists() or not HUB_ID.fullmatch(source):
        raise UsageError(f"{where}={source!r} is not allowed: it is not a directory, and not a hub id (owner/name)")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename))
    except EntryNotFoundError as error:
        if isinstance(error, LocalEntryNotFoundError):  # offline and not in the cache: a subclass, not an answer
            raise _unreachable(source, where, "no connection, and not in the local cache") from None
        return None
    except Exception as error:  # offline, unknown repo, no permission: one line for the user
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _unreachable(source, where, first) from None


def _unreachable(source: str, where: str, reason: str) -> UsageError:
    return UsageError(f"{where}={source!r} is not a local directory and cannot be reached on the hub ({reason}); "
                      f"offline, point {where} at a local directory (exit heads or a multi-exit checkpoint)")


def is_multiexit(source: str | os.PathLike[str]) -> bool:
    """True for a local directory in the released layout (a hub id is checked when imported)."""
    config = Path(source) / "config.json"
    return config.is_file() and "lm_head_layer_indices" in json.loads(config.read_text(encoding="utf-8"))


def read_tensors(weights: Path, wanted: Callable[[str], object], where: str = "heads") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file whose names ``wanted`` accepts (safetensors reads only those)."""
    try:
        if weights.suffix == ".safetensors":
            with safe_open(str(weights), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys() if wanted(key)}
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, pickle.UnpicklingError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{where}: cannot read {str(weights)!r} ({first})") from None
    return {key: tensor for key, tensor in state.items() if wanted(key)}


def weights_file(source: str, where: str = "heads") -> Path:
    """The checkpoint's weights file, local or fetched from the hub."""
    weights = next((path for name in WEIGHT_FILES if (path := _fetch(source, name, where)) is not None), None)
    if weights is None:
        raise UsageError(f"{where}={source!r} has none of {', '.join(WEIGHT_FILES)}")
    return weights


def import_multiexit_heads(source: str | os.PathLike[str], where: str = "heads") -> ExitHeads:
    """Exit heads from a released multi-exit checkpoint (hub id or local directory); errors name ``where``."""
    source = str(source)
    config_path = _fetch(source, "config.json", where)
    if config_path is None:
        raise UsageError(f"{where}={source!r} has no config.json: not a multi-exit checkpoint")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{where}={source!r}: config.json is not valid JSON ({error})") from None
    if not isinstance(config, dict) or "lm_head_layer_indices" not in config:
        raise UsageError(f"{where}={source!r} is not a multi-exit checkpoint: config.json has no lm_head_layer_indices")
    tensors = {int(m.group(1)): tensor for key, tensor in
               read_tensors(weights_file(source, where), HEAD_KEY.search, where).items() if (m := HEAD_KEY.search(key))}
    wanted = sorted(layer for layer in config["lm_head_layer_indices"] if isinstance(layer, int))
    missing = [layer for layer in wanted if layer not in tensors]
    if not wanted or missing:
        raise UsageError(f"{where}={source!r}: exit head weights missing for layers {missing or wanted}")
    vocab_size, hidden_size = tensors[wanted[0]].shape
    n_layers = config.get("num_hidden_layers", config.get("n_layer", config.get("num_layers")))
    heads = ExitHeads(HeadsConfig(base_model=source, exit_layers=wanted, vocab_size=vocab_size,
                                  hidden_size=hidden_size, num_layers=int(n_layers),
                                  metadata={"imported_from": source}))
    with torch.no_grad():
        for layer in wanted:
            heads[layer].weight.copy_(tensors[layer].float())
    return heads


def load_heads(source: str | os.PathLike[str]) -> ExitHeads:
    """Our heads directory, or a released multi-exit checkpoint (local or hub id)."""
    path = Path(source)
    if (path / CONFIG_NAME).is_file() or path.name == CONFIG_NAME or path.suffix == ".safetensors":
        return ExitHeads.load(path)
    if path.is_dir() and not is_multiexit(path):
        return ExitHeads.load(path)  # reports what is missing
    return import_multiexit_heads(source)
