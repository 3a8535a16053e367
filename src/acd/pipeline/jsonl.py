"""JSON-lines files: written atomically, read back with one-line errors naming the file and line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from acd.errors import UsageError
from acd.io import atomic_path


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(
    path: str | os.PathLike[str], required: Sequence[str], what: str, missing_hint: str = ""
) -> list[dict[str, Any]]:
    """Rows of ``path``, each an object with string fields ``required``; ``what`` names the parameter in errors."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what}={str(path)!r} does not exist{missing_hint}")
    fields = ", ".join(repr(name) for name in required)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise UsageError(
                    f"{what}={str(path)!r}: line {number} is not valid JSON (one object per line)"
                ) from None
            if not isinstance(row, dict) or not all(isinstance(row.get(name), str) for name in required):
                raise UsageError(f"{what}={str(path)!r}: line {number} needs string field(s) {fields}")
            rows.append(row)
    if not rows:
        raise UsageError(f"{what}={str(path)!r} is empty: it must hold one JSON object per line with {fields}")
    return rows
