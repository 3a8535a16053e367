"""Offline fixtures: tiny GPT-2 / GPT-Neo / Llama models with the real GPT-2 tokenizer, saved and loaded by path."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acd.core.heads import ExitHeads
from acd.core.loading import load_pretrained
from acd.tools.tiny import make_tiny_model

N_LAYERS = 4
DATA = Path(__file__).parent / "data"


def _tiny(tmp_path_factory: pytest.TempPathFactory, arch: str) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp(f"tiny_{arch}"), arch=arch, n_layers=N_LAYERS, d_model=32)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "gpt2")


@pytest.fixture(scope="session")
def tiny_neo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "gpt_neo")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "llama")


@pytest.fixture(scope="session", params=["gpt2", "gpt_neo", "llama"])
def tiny_any(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue({"gpt2": "tiny_gpt2", "gpt_neo": "tiny_neo", "llama": "tiny_llama"}[request.param])


def _heads(model_dir: Path, out: Path, layers: list[int]) -> Path:
    model, _ = load_pretrained(model_dir, device="cpu")
    heads = ExitHeads.for_model(model, layers, base_model=str(model_dir), seed=1)
    # Random heads of std 0.02 would give near-uniform exits; scale up so contrasts are visible.
    with torch.no_grad():
        for layer in heads.exit_layers:
            heads[layer].weight.mul_(50)
    return heads.save(out)


@pytest.fixture(scope="session")
def gpt2_heads(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _heads(tiny_gpt2, tmp_path_factory.mktemp("gpt2_heads"), [2, 4])


@pytest.fixture(scope="session")
def heads_for(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[Path, Path] = {}

    def make(model_dir: Path) -> Path:
        if model_dir not in cache:
            cache[model_dir] = _heads(model_dir, tmp_path_factory.mktemp("heads"), [1, 2, 4])
        return cache[model_dir]

    return make


def write_multiexit(model_dir: Path, target: Path, layers: tuple[int, ...] = (2, 4), seed: int = 3) -> Path:
    """``model_dir`` saved in the released multi-exit layout: base weights + lm_head_<L> tensors, layers in config."""
    target.mkdir(parents=True)
    for item in model_dir.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    tensors = load_file(str(target / "model.safetensors"))
    config = json.loads((target / "config.json").read_text())
    generator = torch.Generator().manual_seed(seed)
    for layer in layers:
        shape = (config["vocab_size"], config["n_embd"])
        tensors[f"name_to_lm_exit_head.lm_head_{layer}.weight"] = torch.randn(shape, generator=generator)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    config["lm_head_layer_indices"] = [*layers, "original"]
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="session")
def multiexit_checkpoint(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_multiexit(tiny_gpt2, tmp_path_factory.mktemp("released") / "multiexit")
