"""Exit heads: one ``nn.Linear(d_model, vocab, bias=False)`` per exit layer, and their file format.

On disk a heads directory holds ``heads.safetensors`` (tensors ``heads.<L>.weight``) and
``heads.json`` (:class:`HeadsConfig`). The JSON is written last and records the sha256 of
the weights, so a truncated or swapped weights file is caught on load.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from acd.core.architectures import num_layers
from acd.errors import UsageError
from acd.io import atomic_path, sha256_file, write_json

HEADS_FORMAT = "acd-exit-heads"
HEADS_VERSION = 1
WEIGHTS_NAME = "heads.safetensors"
CONFIG_NAME = "heads.json"


@dataclass
class HeadsConfig:
    base_model: str
    exit_layers: list[int]
    vocab_size: int
    hidden_size: int
    num_layers: int
    weights_sha256: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = HEADS_FORMAT
    version: int = HEADS_VERSION


class ExitHeads(nn.Module):
    """Trained exit heads keyed by layer; they read the final-normed hidden state of that layer."""

    def __init__(self, config: HeadsConfig) -> None:
        super().__init__()
        self.config = config
        self.source: str | None = None  # the directory they were loaded from, for messages
        self.heads = nn.ModuleDict(
            {str(layer): nn.Linear(config.hidden_size, config.vocab_size, bias=False) for layer in config.exit_layers}
        )

    @property
    def exit_layers(self) -> list[int]:
        return list(self.config.exit_layers)

    def __contains__(self, layer: object) -> bool:
        return str(layer) in self.heads

    def __getitem__(self, layer: int) -> nn.Linear:
        return self.heads[str(layer)]

    @classmethod
    def for_model(
        cls, model: nn.Module, exit_layers: list[int], base_model: str, init: str = "normal", seed: int = 0
    ) -> ExitHeads:
        """New heads for ``model``: ``normal`` (std 0.02, as the authors) or ``copy`` of its lm_head."""
        n_layers = num_layers(model)
        bad = [layer for layer in exit_layers if not 1 <= layer <= n_layers]
        if bad or not exit_layers:
            raise UsageError(f"exit_layers={exit_layers} is not allowed: each layer must be in 1..{n_layers}")
        if init not in ("normal", "copy"):
            raise UsageError(f"init={init!r} is not allowed: use 'normal' or 'copy'")
        lm_head = model.get_output_embeddings()
        vocab_size, hidden_size = lm_head.weight.shape
        heads = cls(
            HeadsConfig(
                base_model=base_model,
                exit_layers=sorted(set(exit_layers)),
                vocab_size=vocab_size,
                hidden_size=hidden_size,
                num_layers=n_layers,
            )
        )
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in heads.exit_layers:
                weight = heads[layer].weight
                if init == "copy":
                    weight.copy_(lm_head.weight.detach().float())
                else:
                    weight.copy_(torch.randn(weight.shape, generator=generator) * 0.02)
        return heads

    def check_compatible(self, model: nn.Module) -> None:
        """Raise UsageError when these heads were built for a model of another shape."""
        vocab_size, hidden_size = model.get_output_embeddings().weight.shape
        self.check_fits(vocab_size, hidden_size, num_layers(model))

    def check_fits(self, vocab_size: int, hidden_size: int, n_layers: int) -> None:
        """The shape check alone, so it can run on a model's config before its weights are loaded."""
        ours = (self.config.vocab_size, self.config.hidden_size, self.config.num_layers)
        if ours != (vocab_size, hidden_size, n_layers):
            given = f"heads={self.source!r}" if self.source else "heads"
            raise UsageError(
                f"{given} do not fit this model: they were trained for {self.config.base_model!r} (vocab {ours[0]}, "
                f"hidden size {ours[1]}, {ours[2]} layers); the model has vocab {vocab_size}, "
                f"hidden size {hidden_size}, {n_layers} layers"
            )

    def save(self, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"heads.{layer}.weight": self[layer].weight.detach().float().cpu().contiguous() for layer in self.exit_layers}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": HEADS_FORMAT})
        self.config.weights_sha256 = sha256_file(directory / WEIGHTS_NAME)
        if metadata is not None:
            self.config.metadata = metadata
        write_json(directory / CONFIG_NAME, asdict(self.config))
        return directory

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExitHeads:
        """Load a heads directory (or its heads.json / heads.safetensors), checking it is whole."""
        directory = Path(path)
        if directory.is_file():
            directory = directory.parent
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for required in (config_path, weights_path):
            if not required.is_file():
                raise UsageError(f"heads={str(path)!r} is not a heads directory: {required.name} is missing")
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
            config = HeadsConfig(**raw)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
            raise UsageError(f"heads={str(path)!r}: {CONFIG_NAME} is not a valid heads config ({error})") from None
        if config.format != HEADS_FORMAT or config.version != HEADS_VERSION:
            raise UsageError(
                f"heads={str(path)!r}: format {config.format!r} v{config.version} is not "
                f"{HEADS_FORMAT!r} v{HEADS_VERSION}"
            )
        if config.weights_sha256 and sha256_file(weights_path) != config.weights_sha256:
            raise UsageError(
                f"heads={str(path)!r}: {WEIGHTS_NAME} does not match the sha256 in {CONFIG_NAME} "
                "(truncated or replaced); retrain or re-import the heads"
            )
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError) as error:
            raise UsageError(f"heads={str(path)!r}: cannot read {WEIGHTS_NAME} ({error})") from None
        heads = cls(config)
        try:
            heads.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise UsageError(f"heads={str(path)!r}: weights do not match {CONFIG_NAME} ({first})") from None
        heads.source = str(path)
        return heads
