"""Resume journals: rows of finished work under a fingerprint of everything that produced them.

A journal lets a killed stage resume without redoing finished prompts. It may resume only the *same* work, so
its fingerprint covers the inputs, every setting, the weights actually in memory (base model, exit heads,
amateur model: their bytes and dtypes, so retrained heads or another dtype never match) and the package's code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import torch

import acd
from acd.pipeline.jsonl import write_jsonl


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer: name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """sha256 over the package's Python sources: a bug fix invalidates every journal."""
    package = Path(acd.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(weights: str, **work: Any) -> str:
    """The key of a journal: ``work`` (inputs and settings, JSON-serialisable), the weights' digest and the code."""
    payload = {"work": work, "weights": weights, "code": code_digest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_journal(journal: Path, key: str) -> dict[str, dict[str, Any]]:
    """Rows already done under ``key`` (by id); another key or a torn last line (killed mid-write) is dropped."""
    if not journal.is_file():
        return {}
    lines = journal.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("fingerprint") != key:
        return {}
    done = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[row["id"]] = row
    return done


def start_journal(journal: Path, key: str, rows: Iterable[dict[str, Any]]) -> None:
    """Rewrite the journal with what survived under ``key``; the caller appends to it after."""
    write_jsonl(journal, [{"fingerprint": key}, *rows])


def append(handle: Any, rows: list[dict[str, Any]]) -> None:
    """Append rows and make them durable before the next batch starts."""
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())
