"""Open-ended generation over a prompt file: batched, seeded, resumable per prompt, with a progress bar.

Finished prompts are appended to a *journal* (fsynced after each batch, see :mod:`acd.pipeline.journal`)
under a fingerprint of everything the outputs depend on: prompts, settings, the weights in memory and the
package's code. A rerun with the same fingerprint skips the prompts already done; anything else starts over.
The journal lives outside the DVC outputs (DVC deletes those before rerunning a stage) and is removed when the
stage's last file is written. Each batch is seeded from (seed, strategy,
domain, batch index) alone, so a resumed run writes exactly what an uninterrupted one would,
and the plain expert and ACD draw the same random streams. Outputs are written atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from acd.pipeline.decoding import STRATEGIES, batches, generate_new_tokens, generated_lengths
from acd.errors import UsageError
from acd.core.loading import describe, load
from acd.core.model import Exit
from acd.pipeline.params import Decoding
from acd.pipeline.prompts import read_prompts
from acd.pipeline.world import World
from acd.pipeline.journal import append, fingerprint, read_journal, start_journal, weights_digest
from acd.pipeline.jsonl import read_jsonl, write_jsonl

GenerationKind = Literal["plain", "acd", "layer"]


@dataclass(frozen=True)
class GenerationParams:
    """params.yaml ``generation``: the paper's four strategies, up to 100 new tokens."""

    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    max_new_tokens: int = 100
    batch_size: int = 16
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    layer_sweep_domains: list[str] = field(default_factory=lambda: ["wikitext"])

    def __post_init__(self) -> None:
        if not self.strategies:
            raise UsageError("generation.strategies is empty: use some of " + ", ".join(STRATEGIES))
        for strategy in self.strategies:
            if strategy not in STRATEGIES:
                raise UsageError(
                    f"generation.strategies: {strategy!r} is not allowed: use one of {', '.join(STRATEGIES)}"
                )
        if self.max_new_tokens < 1:
            raise UsageError(f"generation.max_new_tokens={self.max_new_tokens} is out of range: it must be >= 1")
        if self.batch_size < 1:
            raise UsageError(f"generation.batch_size={self.batch_size} is out of range: it must be >= 1")


def batch_seed(seed: int, *keys: object) -> int:
    """A 31-bit seed derived from ``seed`` and ``keys`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("/".join(str(part) for part in (seed, *keys)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def generation_settings(
    model: Any, model_name: str, kind: GenerationKind, strategy: str, max_new_tokens: int
) -> dict[str, Any]:
    """What produced a continuation: the model, exits and (for ACD only) the contrast knobs."""
    contrast = describe(model)
    settings: dict[str, Any] = {
        "kind": kind,
        "model": model_name,
        "strategy": strategy,
        "max_new_tokens": max_new_tokens,
        "expert": contrast["expert"],
    }
    if contrast["amateur"] is not None:
        knobs = ("amateur", "alpha", "min_candidates", "keep_tail", "amateur_temperature")
        settings.update({key: contrast[key] for key in knobs})
    return settings


def generate_file(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[dict[str, Any]],
    out: str | os.PathLike[str],
    *,
    journal: str | os.PathLike[str],
    settings: dict[str, Any],
    batch_size: int,
    seed: int,
    world: World = World(),
    weights: str | None = None,
) -> Path:
    """Continue every prompt with ``settings["strategy"]`` and write ``out`` (jsonl, prompt order).

    With several processes (``world``), process r decodes the batches whose index is r modulo their number and
    journals them in a file of its own; the main process then writes ``out`` from every journal. Batches and
    their seeds do not depend on the number of processes, so neither does a byte of ``out``.
    """
    out, journal = Path(out), Path(journal)
    strategy, max_new_tokens = settings["strategy"], settings["max_new_tokens"]
    key = fingerprint(weights or weights_digest(model), prompts=[(row["id"], row["prompt"]) for row in prompts],
                      settings=settings, batch_size=batch_size, seed=seed)
    mine = journal if world.size == 1 else journal.with_name(f"{journal.stem}.rank{world.rank}{journal.suffix}")
    done = journaled(journal, key)
    start_journal(mine, key, read_journal(mine, key).values())
    my_batches = [(index, batch) for index, batch in enumerate(batches(prompts, batch_size))
                  if index % world.size == world.rank]
    my_ids = [row["id"] for _, batch in my_batches for row in batch]
    with open(mine, "a", encoding="utf-8") as handle, tqdm(
        total=len(my_ids), initial=sum(1 for id_ in my_ids if id_ in done), unit="prompt",
        desc=f"{settings['kind']} {strategy} {out.stem}", disable=not world.main,
    ) as progress:
        for index, batch in my_batches:
            todo = [row for row in batch if row["id"] not in done]
            if not todo:
                continue
            # The whole batch is regenerated, so a batch cut short by a kill is decoded exactly as before.
            domain = batch[0].get("domain", "")
            new_tokens = generate_new_tokens(
                model, tokenizer, [row["prompt"] for row in batch], strategy, max_new_tokens,
                seed=batch_seed(seed, strategy, domain, index),
            )
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            lengths = generated_lengths(new_tokens, tokenizer.eos_token_id)
            rows = [
                {
                    "id": row["id"],
                    "domain": row.get("domain"),
                    "prompt": row["prompt"],
                    "continuation": text,
                    "reference": row.get("reference"),
                    "n_tokens": length,
                    "settings": settings,
                }
                for row, text, length in zip(batch, texts, lengths)
                if row["id"] not in done
            ]
            append(handle, rows)
            done.update((row["id"], row) for row in rows)
            progress.update(len(rows))
    world.barrier()  # every process's rows are in its journal
    if world.main:
        done = journaled(journal, key)
        write_jsonl(out, (done[row["id"]] for row in prompts))
    world.barrier()
    return out


def journaled(journal: Path, key: str) -> dict[str, dict[str, Any]]:
    """Rows done under ``key`` in ``journal`` and in the per-process journals beside it (any number of processes)."""
    done: dict[str, dict[str, Any]] = {}
    for path in [journal, *sorted(journal.parent.glob(f"{journal.stem}.rank*{journal.suffix}"))]:
        done.update(read_journal(path, key))
    return done


@dataclass(frozen=True)
class Plain:
    """The top-level keys a baseline stage reads: never alpha, layer or amateur."""

    model: str
    expert: Literal["original", "new"] = "new"
    seed: int = 0


def read_prompt_sets(prompt_files: Sequence[Path]) -> dict[Path, list[dict[str, Any]]]:
    """Every prompt file, read and checked: before the model loads, so a malformed file fails in seconds."""
    return {Path(path): read_prompts(path) for path in prompt_files}


def load_generator(
    top: Plain | Decoding, heads: str | os.PathLike[str], dtype: str, contrast: bool, device: str | None = None
) -> tuple[Any, Any]:
    """The model a generation stage decodes with: ``top``'s expert alone, or ACD (``contrast``, ``top`` a Decoding).

    The original head alone is the pretrained model itself and loads no heads (e.g. GPT2-XL for Table 3).
    """
    if not contrast:
        return load(top.model, heads=heads if top.expert == "new" else None, expert=top.expert, dtype=dtype,
                    device=device)
    return load(top.model, heads=heads, dtype=dtype, spec=top.spec(), device=device)


def generate_domains(
    model: Any,
    tokenizer: Any,
    prompt_sets: Mapping[Path, Sequence[dict[str, Any]]],
    out_dir: str | os.PathLike[str],
    journal_dir: str | os.PathLike[str],
    *,
    model_name: str,
    kind: GenerationKind,
    strategy: str,
    params: GenerationParams,
    seed: int,
    world: World = World(),
) -> list[Path]:
    """One generations file per prompt file (same name, from :func:`read_prompt_sets`), with the model as set now."""
    settings = generation_settings(model, model_name, kind, strategy, params.max_new_tokens)
    weights = weights_digest(model)  # hashed once: every file is decoded by the same weights
    outputs = [
        generate_file(
            model, tokenizer, prompts, Path(out_dir) / path.name, journal=Path(journal_dir) / path.name,
            settings=settings, batch_size=params.batch_size, seed=seed, world=world, weights=weights,
        )
        for path, prompts in prompt_sets.items()
    ]
    if world.main:
        shutil.rmtree(journal_dir, ignore_errors=True)  # done: nothing is left to resume
    return outputs


def generate_layer_sweep(
    model: Any,
    tokenizer: Any,
    prompt_sets: Mapping[Path, Sequence[dict[str, Any]]],
    out_dir: str | os.PathLike[str],
    journal_dir: str | os.PathLike[str],
    *,
    model_name: str,
    params: GenerationParams,
    seed: int,
    world: World = World(),
) -> list[Path]:
    """Fig. 2: greedy decoding from every trained exit head alone, into ``out_dir/<domain>/layer-LL.jsonl``."""
    heads = model.acd_heads
    if heads is None:
        raise UsageError("the per-exit sweep needs trained exit heads: heads is missing")
    weights = weights_digest(model)  # hashed once: choosing an exit changes no weight
    outputs = []
    for path, prompts in prompt_sets.items():
        for layer in heads.exit_layers:
            model.set_contrast(expert=Exit(layer, "head"), amateur=None)
            settings = generation_settings(model, model_name, "layer", "greedy", params.max_new_tokens)
            settings["exit_layer"] = layer
            name = Path(path.stem) / f"layer-{layer:02d}.jsonl"
            outputs.append(
                generate_file(
                    model, tokenizer, prompts, Path(out_dir) / name, journal=Path(journal_dir) / name,
                    settings=settings, batch_size=params.batch_size, seed=seed, world=world, weights=weights,
                )
            )
    if world.main:
        shutil.rmtree(journal_dir, ignore_errors=True)  # done: nothing is left to resume
    return outputs


def read_generations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A generations file; missing, empty or malformed is a UsageError."""
    return read_jsonl(path, ["id", "prompt", "continuation"], "generations", ": run the generation stage first")
