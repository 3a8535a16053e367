"""The layer × alpha grid of DVC experiments: LAMBADA accuracy and greedy diversity of ACD per cell.

``dvc exp run --queue -S alpha=... -S layer=...`` then ``--run-all`` runs the grid; ``dvc exp show --json``
lists every run with its params and metrics. :func:`grid_points` turns that JSON into one point per
(layer, alpha) (pure: tests feed it a recorded sample); :func:`markdown_tables` and :func:`heatmaps`
show them. Only finished runs count: queued or failed ones have no metrics and are left out.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acd.errors import UsageError
from acd.io import atomic_path

PARAMS_FILE = "params.yaml"
LAMBADA_METRICS = "metrics/benchmarks/lambada_acd.json"
GENERATION_METRICS = "metrics/generation.json"
MEAN = "mean"
METRICS = {"lambada_acc": "LAMBADA accuracy (ACD)", "greedy_diversity": "greedy diversity (ACD, {domain})"}


@dataclass(frozen=True)
class GridPoint:
    layer: int | str  # an exit layer; a string for a non-numeric choice (e.g. `dynamic`)
    alpha: float
    name: str  # the experiment's name (or the commit's, for the baseline)
    lambada_acc: float | None
    greedy_diversity: float | None


def runs(exp_show: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, data) of every experiment, then its baseline commit, in ``dvc exp show --json`` output.

    The workspace repeats the checked-out run (or holds uncommitted edits): it is not a run of its own.
    Experiments come before their commit, so a grid cell the baseline shares with one is named after it.
    """
    for commit in exp_show:
        for group in commit.get("experiments") or []:
            for state in group.get("revs") or []:
                if state.get("data"):
                    yield state.get("name") or group.get("name") or state["rev"][:7], state["data"]
        if commit.get("rev") != "workspace" and commit.get("data"):
            yield commit.get("name") or commit["rev"][:7], commit["data"]


def _metrics(data: dict[str, Any], path: str) -> dict[str, Any] | None:
    entry = (data.get("metrics") or {}).get(path) or {}
    return None if entry.get("error") else entry.get("data")


def lambada_accuracy(metrics: dict[str, Any] | None) -> float | None:
    """ACD accuracy, averaged over the LAMBADA tasks scored (``lambada_openai``; offline ``lambada_local``)."""
    if not metrics:
        return None
    scores = [task["acd"]["acc"] for task in (metrics.get("results") or {}).values() if "acc" in task.get("acd", {})]
    return sum(scores) / len(scores) if scores else None


def greedy_diversity(metrics: dict[str, Any] | None, domain: str) -> float | None:
    """Greedy + ACD diversity on ``domain`` (or the mean over the domains with ``mean``)."""
    domains = ((metrics or {}).get("table") or {}).get("greedy") or {}
    if domain == MEAN:
        values = [cell["acd"]["diversity"] for cell in domains.values() if "acd" in cell]
        return sum(values) / len(values) if values else None
    cell = domains.get(domain, {}).get("acd")
    return None if cell is None else cell["diversity"]


def grid_points(exp_show: list[dict[str, Any]], domain: str = "wikitext") -> list[GridPoint]:
    """One point per (layer, alpha) that has a metric, sorted; the first run listed wins a repeated cell.

    ``dvc exp show`` lists the newest experiments first, so a rerun cell shows its latest result.
    """
    if not isinstance(exp_show, list):
        raise UsageError("exp_show: expected the JSON list written by `dvc exp show --json`")
    points: dict[tuple[int | str, float], GridPoint] = {}
    domains: set[str] = set()
    for name, data in runs(exp_show):
        params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
        if "layer" not in params or "alpha" not in params:
            continue
        domains.update((((_metrics(data, GENERATION_METRICS) or {}).get("table") or {}).get("greedy") or {}))
        point = GridPoint(layer=params["layer"], alpha=float(params["alpha"]), name=name,
                          lambada_acc=lambada_accuracy(_metrics(data, LAMBADA_METRICS)),
                          greedy_diversity=greedy_diversity(_metrics(data, GENERATION_METRICS), domain))
        key = (point.layer, point.alpha)
        if key not in points and (point.lambada_acc is not None or point.greedy_diversity is not None):
            points[key] = point
    if domains and domain != MEAN and domain not in domains:
        raise UsageError(f"domain={domain!r} is not allowed: the runs have greedy generations on "
                         f"{', '.join(sorted(domains))} (or use {MEAN!r})")
    return [points[key] for key in sorted(points, key=lambda key: (layer_order(key[0]), key[1]))]


def layer_order(layer: int | str) -> tuple[int, int, str]:
    """Numeric layers in order, then named ones."""
    return (0, layer, "") if isinstance(layer, int) else (1, 0, str(layer))


def axes(points: list[GridPoint]) -> tuple[list[int | str], list[float]]:
    """The grid's layers (rows) and alphas (columns), each sorted."""
    return sorted({p.layer for p in points}, key=layer_order), sorted({p.alpha for p in points})


def matrix(points: list[GridPoint], metric: str) -> list[list[float]]:
    """``metric`` as rows of layers × columns of alphas; NaN where the grid has no run."""
    layers, alphas = axes(points)
    cells = {(p.layer, p.alpha): getattr(p, metric) for p in points}
    return [[math.nan if cells.get((layer, alpha)) is None else cells[(layer, alpha)] for alpha in alphas]
            for layer in layers]


def markdown_tables(points: list[GridPoint], domain: str) -> str:
    """One markdown table per metric: a row per layer, a column per alpha, '–' where no run finished."""
    layers, alphas = axes(points)
    parts = []
    for metric, title in METRICS.items():
        rows = matrix(points, metric)
        header = "| layer \\ alpha | " + " | ".join(f"{a:g}" for a in alphas) + " |"
        lines = [f"**{title.format(domain=domain)}**", "", header, "|---|" + "---|" * len(alphas)]
        lines += [f"| {layer} | " + " | ".join("–" if math.isnan(v) else f"{v:.3f}" for v in row) + " |"
                  for layer, row in zip(layers, rows)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def heatmaps(points: list[GridPoint], domain: str) -> bytes:
    """PNG of one heat map per metric over the grid, each cell labelled with its value."""
    from matplotlib.figure import Figure

    layers, alphas = axes(points)
    figure = Figure(figsize=(4.2 * len(METRICS), 0.6 * len(layers) + 1.8), layout="constrained")
    for ax, (metric, title) in zip(figure.subplots(1, len(METRICS), squeeze=False)[0], METRICS.items()):
        rows = matrix(points, metric)
        image = ax.imshow(rows, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
        ax.set_xlabel("alpha")
        ax.set_ylabel("amateur layer")
        ax.set_title(title.format(domain=domain))
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                light = not math.isnan(value) and image.norm(value) > 0.5  # viridis is light at the top
                ax.text(j, i, "–" if math.isnan(value) else f"{value:.3f}", ha="center", va="center",
                        color="black" if light else "white")
        figure.colorbar(image, ax=ax)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def read_exp_show(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """``dvc exp show --json`` output from ``path``, or from running it in the current directory."""
    if path is None:
        command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise UsageError(f"`dvc exp show --json` failed here ({last}): run it in the project, "
                             "or pass its saved output")
        text, where = result.stdout, "`dvc exp show --json`"
    else:
        if not Path(path).is_file():
            raise UsageError(f"exp_json={str(path)!r} does not exist: save it with `dvc exp show --json > FILE`")
        text, where = Path(path).read_text(encoding="utf-8"), f"exp_json={str(path)!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where} is not JSON ({error.msg}, line {error.lineno})") from None


def write_grid(points: list[GridPoint], domain: str, png: str | os.PathLike[str],
               markdown: str | os.PathLike[str]) -> None:
    """The heat maps and the markdown tables, each written atomically."""
    if not points:
        raise UsageError("the experiments hold no finished run with layer, alpha and ACD metrics: "
                         "run the grid first (dvc exp run --run-all)")
    with atomic_path(png) as tmp:
        tmp.write_bytes(heatmaps(points, domain))
    with atomic_path(markdown) as tmp:
        tmp.write_text(markdown_tables(points, domain), encoding="utf-8")
