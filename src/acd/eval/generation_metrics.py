"""Scores of generated continuations: diversity, coherence, length, and optionally MAUVE (paper §4.2.1).

One cell is one generations file (a strategy × domain × {plain, acd} of Table 1, or one exit
layer of Fig. 2). :func:`score_rows` turns its rows into the numbers a table cell shows.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from acd.eval.coherence import CoherenceScorer
from acd.eval.diversity import diversity_summary, words
from acd.errors import UsageError
from acd.pipeline.generation import read_generations
from acd.io import atomic_path


@dataclass(frozen=True)
class GenerationMetricsParams:
    """params.yaml ``generation_metrics``: the paper's SimCSE coherence; MAUVE off by default."""

    coherence_model: str = "princeton-nlp/sup-simcse-bert-base-uncased"
    coherence_pooling: Literal["pooler", "sentence-transformers"] = "pooler"
    coherence_max_length: int = 128
    batch_size: int = 64
    mauve: bool = False
    mauve_featurizer: str = "gpt2-large"
    mauve_max_length: int = 256

    def __post_init__(self) -> None:
        for name in ("coherence_max_length", "batch_size", "mauve_max_length"):
            if getattr(self, name) < 1:
                raise UsageError(f"generation_metrics.{name}={getattr(self, name)} is out of range: it must be >= 1")

    def scorer(self, device: str | None = None) -> CoherenceScorer:
        return CoherenceScorer(
            self.coherence_model, self.coherence_pooling, device=device, batch_size=self.batch_size,
            max_length=self.coherence_max_length,
        )


def mauve_score(
    references: Sequence[str], continuations: Sequence[str], featurizer: str, max_length: int, seed: int
) -> float:
    """MAUVE of the continuations against the true continuations (needs the ``mauve`` extra)."""
    try:
        import mauve
    except ImportError:
        raise UsageError(
            "generation_metrics.mauve=true needs the mauve-text package: pip install 'acd[mauve]' (or set mauve: false)"
        ) from None
    import torch

    result = mauve.compute_mauve(
        p_text=list(references),
        q_text=list(continuations),
        featurize_model_name=featurizer,
        device_id=0 if torch.cuda.is_available() else -1,
        max_text_length=max_length,
        seed=seed,
        verbose=False,
    )
    return float(result.mauve)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_rows(
    rows: Sequence[dict[str, Any]], scorer: CoherenceScorer, params: GenerationMetricsParams, seed: int = 0
) -> dict[str, Any]:
    """The metrics of one cell: per-example means as the paper, corpus-level diversity, lengths, n."""
    continuations = [row["continuation"] for row in rows]
    metrics: dict[str, Any] = dict(diversity_summary(continuations))
    metrics["coherence"] = _mean(scorer.score([row["prompt"] for row in rows], continuations))
    metrics["length_words"] = _mean([len(words(text)) for text in continuations])
    token_counts = [row["n_tokens"] for row in rows if isinstance(row.get("n_tokens"), int)]
    metrics["length_tokens"] = _mean(token_counts) if len(token_counts) == len(rows) else None
    metrics["n"] = len(rows)
    if params.mauve:
        references = [row.get("reference") or "" for row in rows]
        if not all(references):
            raise UsageError("generation_metrics.mauve=true needs a reference continuation for every prompt")
        metrics["mauve"] = mauve_score(
            references, continuations, params.mauve_featurizer, params.mauve_max_length, seed
        )
    return metrics


def score_tree(
    root: str | os.PathLike[str],
    groups: Sequence[str],
    scorer: CoherenceScorer,
    params: GenerationMetricsParams,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """``root/<group>/<cell>.jsonl`` for the named groups -> {group: {cell: {"metrics", "settings"}}}.

    Groups are named (the strategies, or the swept domains) so a folder left over from an
    earlier configuration is never scored.
    """
    root = Path(root)
    tree: dict[str, dict[str, Any]] = {}
    for group in groups:
        files = sorted((root / group).glob("*.jsonl"))
        if not files:
            raise UsageError(f"generations={str(root / group)!r} holds no .jsonl files: run the generation stage first")
        for path in files:
            rows = read_generations(path)
            tree.setdefault(group, {})[path.stem] = {
                "metrics": score_rows(rows, scorer, params, seed),
                "settings": rows[0].get("settings", {}),
            }
    return tree


def generation_table(trees: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per-kind trees ({"plain": ..., "acd": ...}) -> the paper's shape: strategy -> domain -> kind -> metrics.

    ``settings`` records what produced the numbers (model, expert, and ACD's amateur and alpha),
    which the report uses to pick the paper's matching table.
    """
    table: dict[str, dict[str, dict[str, Any]]] = {}
    settings: dict[str, Any] = {}
    for kind, tree in trees.items():
        for strategy, cells in tree.items():
            for domain, cell in cells.items():
                table.setdefault(strategy, {}).setdefault(domain, {})[kind] = cell["metrics"]
                cell_settings = cell["settings"]
                settings.setdefault("model", cell_settings.get("model"))
                settings.setdefault("expert", cell_settings.get("expert"))
                if kind == "acd":
                    settings.setdefault("acd", {k: cell_settings.get(k) for k in ("amateur", "alpha")})
    return {"settings": settings, "table": table}


LAYER_COLUMNS = ("domain", "layer", "diversity", "coherence", "diversity_corpus", "rep_2", "rep_3", "rep_4",
                 "length_tokens", "length_words", "n")


def layer_rows(tree: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-exit sweep (Fig. 2) as flat rows, one per domain × exit layer, sorted by layer."""
    rows = []
    for domain, cells in tree.items():
        for cell in cells.values():
            metrics = cell["metrics"]
            row = {"domain": domain, "layer": cell["settings"]["exit_layer"]}
            row.update({key: metrics.get(key) for key in LAYER_COLUMNS[2:]})
            rows.append(row)
    return sorted(rows, key=lambda row: (row["domain"], row["layer"]))


def acd_plot_rows(tree: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Greedy ACD per domain as the ACD point of the per-exit plot (Fig. 2): at its expert's layer."""
    from acd.eval.benchmarks import exit_point

    return [
        {"domain": domain, "layer": exit_point(cell["settings"]["expert"], {})[1], "exit": "acd",
         **{key: cell["metrics"].get(key) for key in LAYER_COLUMNS[2:]}}
        for domain, cell in sorted(tree.get("greedy", {}).items())
    ]


def write_layer_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """The sweep as CSV for ``dvc plots`` (x: layer; y: diversity, coherence)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LAYER_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
