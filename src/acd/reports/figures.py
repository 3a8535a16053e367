"""The paper's figures as PNG files, drawn with matplotlib from the metrics the stages write.

`dvc plots show` renders through vega loaded from a CDN, so its page is blank offline; these files open
anywhere. Fig. 2: greedy diversity and coherence of each exit alone, with the ACD point; Figs. 3-5: LAMBADA
accuracy / perplexity, WikiText-2 word perplexity and inverse-scaling accuracy per exit, head vs lens vs ACD;
and the exit heads' training loss.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acd.io import atomic_path

# (group, metric, title): one figure per row, each with head, lens and ACD series.
BENCHMARK_FIGURES = (
    ("lambada", "acc", "LAMBADA accuracy (paper Fig. 3)"),
    ("lambada", "perplexity", "LAMBADA perplexity (paper Fig. 4)"),
    ("wikitext", "word_perplexity", "WikiText-2 word perplexity (paper Fig. 5)"),
    ("inverse_scaling", "acc", "Inverse-scaling mean accuracy"),
)
KINDS = {"head": "trained exit head", "lens": "original lm_head on the layer (lens)", "acd": "ACD"}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    rows = json.loads(path.read_text(encoding="utf-8"))
    return rows if isinstance(rows, list) else []


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _series(rows: Sequence[dict[str, Any]], y: str, where: dict[str, Any] | None = None) -> tuple[list, list]:
    points = sorted(
        (_number(row.get("layer")), _number(row.get(y)))
        for row in rows
        if all(str(row.get(key)) == str(value) for key, value in (where or {}).items())
    )
    kept = [(x, v) for x, v in points if x is not None and v is not None]
    return [x for x, _ in kept], [v for _, v in kept]


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def generation_figures(layers_csv: Path, acd_json: Path, out_dir: Path) -> list[Path]:
    """Fig. 2: per-exit greedy diversity and coherence, one line per domain, ACD as a star at its expert's layer."""
    rows, acd = _read_rows(layers_csv), _read_rows(acd_json)
    written = []
    for metric in ("diversity", "coherence"):
        figure, axes = _axes(f"Greedy {metric} per exit (paper Fig. 2)", "exit layer", metric)
        for domain in sorted({row["domain"] for row in rows}):
            xs, ys = _series(rows, metric, {"domain": domain})
            line = axes.plot(xs, ys, marker="o", label=f"{domain}: exit alone")[0]
            ax, ay = _series(acd, metric, {"domain": domain})
            axes.plot(ax, ay, marker="*", markersize=14, linestyle="", color=line.get_color(), label=f"{domain}: ACD")
        axes.legend(fontsize=7)
        written.append(_save(figure, out_dir / f"generation_{metric}.png"))
    return written


def benchmark_figures(plots_dir: Path, out_dir: Path) -> list[Path]:
    """Figs. 3-5: a benchmark metric per exit layer for the trained heads, the lens and ACD."""
    written = []
    for group, metric, title in BENCHMARK_FIGURES:
        series = {kind: _series(_read_rows(plots_dir / f"{group}_{kind}.json"), metric) for kind in KINDS}
        if not any(xs for xs, _ in series.values()):
            continue
        figure, axes = _axes(title, "exit layer", metric.replace("_", " "))
        for kind, (xs, ys) in series.items():
            style = {"marker": "*", "markersize": 14, "linestyle": ""} if kind == "acd" else {"marker": "o"}
            axes.plot(xs, ys, label=KINDS[kind], **style)
        if "perplexity" in metric:
            axes.set_yscale("log")
        axes.legend(fontsize=7)
        written.append(_save(figure, out_dir / f"{group}_{metric}.png"))
    return written


def training_figure(loss_csv: Path, out_dir: Path) -> list[Path]:
    """The exit heads' training loss per step, one line per head."""
    rows = _read_rows(loss_csv)
    if not rows:
        return []
    figure, axes = _axes("Exit-head training loss", "step", "loss")
    steps = [_number(row["step"]) for row in rows]
    for column in (name for name in rows[0] if name.startswith("head")):
        axes.plot(steps, [_number(row[column]) for row in rows], label=column)
    axes.legend(fontsize=7, ncol=2)
    return [_save(figure, out_dir / "train_loss.png")]


def draw_all(metrics: str | os.PathLike[str] = "metrics") -> list[Path]:
    """Every figure whose data exist under ``metrics``, into ``metrics/figures``."""
    metrics = Path(metrics)
    out_dir = metrics / "figures"
    return [
        *training_figure(metrics / "train_loss.csv", out_dir),
        *generation_figures(metrics / "generation_layers.csv", metrics / "plots" / "generation_acd.json", out_dir),
        *benchmark_figures(metrics / "plots" / "benchmarks", out_dir),
    ]
