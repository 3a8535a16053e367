"""Reports: our numbers beside the paper's, as tables for the terminal (rich) and for Markdown.

A report is a list of :class:`Table` (title, columns, rows of strings, note); the two renderers
know nothing about metrics, and the builders know nothing about rendering.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acd.reports import paper
from acd.errors import UsageError


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def beside(ours: Any, theirs: Any) -> str:
    """``ours (paper)``; the paper's part is left out when it reports nothing for the cell."""
    return fmt(ours) if theirs is None else f"{fmt(ours)} ({fmt(theirs)})"


def no_paper(ours: Any) -> str:
    """``ours (no paper number)``: the run is not the paper's setting, so no paper number stands beside it."""
    return f"{fmt(ours)} ({paper.NO_PAPER_NUMBER})"


def _ordered(keys: Sequence[str], preferred: Sequence[str]) -> list[str]:
    return [key for key in preferred if key in keys] + sorted(key for key in keys if key not in preferred)


def expert_kind(expert: str | None) -> str:
    """``head24`` is a trained (new) expert head, ``lens24`` the model's original lm_head.

    It says nothing about the layer: whether a run is the paper's setting is :func:`acd.reports.paper.paper_setting`.
    """
    return "original" if expert and expert.startswith("lens") else "new"


def generation_tables(metrics: dict[str, Any], layers: Sequence[dict[str, Any]] | None = None) -> list[Table]:
    """Table 1/5 shape (div, coh per domain, ``ours (paper)``), details, and the per-exit sweep (Fig. 2).

    Plain rows carry paper numbers only when the model and expert are the paper's; ACD rows only when the
    amateur and alpha are too (:func:`acd.reports.paper.paper_setting`); other rows say "no paper number".
    """
    settings, table = metrics.get("settings", {}), metrics.get("table", {})
    model, expert = settings.get("model") or "?", settings.get("expert")
    acd = settings.get("acd") or {}
    matched = {"plain": paper.paper_setting(model, expert),
               "acd": paper.paper_setting(model, expert, acd.get("amateur"), acd.get("alpha")) if acd else None}
    references = {kind: (paper.generation_reference(*setting) or {}) if setting else None
                  for kind, setting in matched.items()}
    strategies = _ordered(list(table), paper.STRATEGIES)
    domains = _ordered(sorted({domain for cells in table.values() for domain in cells}), paper.DOMAINS)
    where = f"model {model}, expert {expert}" + (
        f", ACD amateur {acd.get('amateur')}, alpha {acd.get('alpha')}" if acd else ""
    )

    main_rows, detail_rows, kinds = [], [], set()
    for strategy in strategies:
        for kind in ("plain", "acd"):
            if not any(kind in table[strategy].get(domain, {}) for domain in domains):
                continue
            kinds.add(kind)
            label = strategy if kind == "plain" else f"{strategy} + ACD"
            row = [label]
            reference = references[kind]
            for domain in domains:
                ours = table[strategy].get(domain, {}).get(kind, {})
                if reference is None:
                    row += [no_paper(ours.get("diversity")), no_paper(ours.get("coherence"))]
                else:
                    theirs = reference.get(strategy, {}).get(domain, {}).get(kind, {})
                    row += [beside(ours.get("diversity"), theirs.get("diversity")),
                            beside(ours.get("coherence"), theirs.get("coherence"))]
                if ours:
                    detail_rows.append([
                        label, domain, fmt(ours.get("diversity_corpus")), fmt(ours.get("rep_2"), 1),
                        fmt(ours.get("rep_3"), 1), fmt(ours.get("rep_4"), 1), fmt(ours.get("length_tokens"), 1),
                        fmt(ours.get("length_words"), 1), fmt(ours.get("n_short")), fmt(ours.get("mauve")),
                        fmt(ours.get("n")),
                    ])
            main_rows.append(row)
    setting = matched["plain"] or matched["acd"]
    source = paper.generation_source(*setting) if setting else paper.NO_PAPER_NUMBER
    unmatched = [label for kind, label in (("plain", "plain"), ("acd", "+ ACD")) if kind in kinds and not matched[kind]]
    why = (f"; {paper.NO_PAPER_NUMBER} for the {' and '.join(unmatched)} rows: not the paper's setting "
           f"({paper.setting_text(model)})") if unmatched else ""
    tables = [
        Table(
            title="Open-ended generation: diversity and coherence, ours (paper)",
            columns=["decoding"] + [f"{domain} {metric}" for domain in domains for metric in ("div", "coh")],
            rows=main_rows,
            note=f"{where}; paper numbers: {source}{why}. "
            "div = per-example mean diversity (as the authors), coh = mean prompt/continuation cosine.",
        ),
        Table(
            title="Details",
            columns=["decoding", "domain", "div corpus", "rep-2", "rep-3", "rep-4", "tokens", "words", "<4 words",
                     "MAUVE", "n"],
            rows=detail_rows,
            note="div corpus pools n-gram counts over all continuations (SimCTG); rep-n per-example means in %; "
            "<4 words: continuations without a 4-gram, left out of the per-example diversity.",
        ),
    ]
    if layers:
        tables.append(
            Table(
                title="Greedy decoding from each exit alone (paper Fig. 2)",
                columns=["domain", "layer", "div", "coh", "tokens"],
                rows=[
                    [str(row["domain"]), str(row["layer"]), fmt(_number(row.get("diversity"))),
                     fmt(_number(row.get("coherence"))), fmt(_number(row.get("length_tokens")), 1)]
                    for row in layers
                ],
            )
        )
    return tables


def _number(value: Any) -> float | None:
    """CSV cells come back as strings; empty means missing."""
    if value in (None, ""):
        return None
    return float(value)


def render_markdown(tables: Sequence[Table]) -> str:
    parts = []
    for table in tables:
        lines = [f"### {table.title}", "", "| " + " | ".join(table.columns) + " |",
                 "|" + "|".join("---" for _ in table.columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in table.rows]
        if table.note:
            lines += ["", table.note]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_rich(tables: Sequence[Table], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = console or Console()
    for table in tables:
        rich_table = RichTable(title=table.title, caption=table.note or None)
        for column in table.columns:
            rich_table.add_column(column)
        for row in table.rows:
            rich_table.add_row(*row)
        console.print(rich_table)


def load_generation_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"metrics={str(path)!r} does not exist: run the generation stages (dvc repro generation_table)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UsageError(f"metrics={str(path)!r} is not valid JSON") from None
    if not isinstance(data, dict) or "table" not in data:
        raise UsageError(f"metrics={str(path)!r} is not a generation metrics file (no 'table')")
    return data


def load_layer_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]] | None:
    """The per-exit CSV, or None when the sweep has not run."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
