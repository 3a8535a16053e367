"""``acd inspect --out``: the layer-by-token heat map and the paper's expert / amateur / ACD bars (Fig. 1).

Top: how the next-token probabilities evolve across exits (rows, first layer on top, ACD
last). For one position the columns are the candidate tokens (the expert's and ACD's top
tokens); for ``--positions all`` they are the positions of the text and each cell names
the exit's most probable next token there. Bottom: the three-panel bar chart of the last
inspected position over the candidate tokens: plausible tokens coloured, the greedy pick
of each distribution outlined.
"""

from __future__ import annotations

import io
import os

import numpy as np
from matplotlib.figure import Figure

from acd.tools.inspection import ACD, AMATEUR, EXPERT, Inspection, Step
from acd.tools.inspection_report import context_text, exit_names, format_prob, summary_names, visible
from acd.io import atomic_path

DPI = 100
ROW_INCHES = 0.32
COLUMN_INCHES = 0.85
BARS_INCHES = 3.4
FORMATS = ("png", "svg", "pdf")


def short(text: str, width: int = 10) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def figure_size(inspection: Inspection) -> tuple[float, float]:
    """Width and height in inches: grows with the rows (exits) and the columns (tokens or positions)."""
    columns = len(inspection.steps) if len(inspection.steps) > 1 else len(inspection.steps[-1].candidates)
    rows = len(inspection.exits) + 1
    return max(10.0, COLUMN_INCHES * columns + 2.5), ROW_INCHES * rows + 1.8 + BARS_INCHES


def _heat_map(ax, fig: Figure, inspection: Inspection) -> None:
    steps = inspection.steps
    names = exit_names(inspection)
    keys = [str(e) for e in inspection.exits] + [ACD]
    labels = [names.get(key, summary_names(inspection)[ACD]) for key in keys]
    if len(steps) == 1:
        step = steps[0]
        values = np.array([step.candidate_probs[key] for key in keys])
        texts = [[format_prob(p) for p in row] for row in values]
        columns = [visible(inspection.tokens[t]) + ("*" if t in step.plausible else "") for t in step.candidates]
        ax.set_title("probability of each candidate token at every exit (* = in the plausible set)", loc="left")
    else:
        top1 = {key: [s.exits[key] if key != ACD else s.acd for s in steps] for key in keys}
        values = np.array([[ranked.probs[0] for ranked in top1[key]] for key in keys])
        texts = [[short(visible(inspection.tokens[r.token_ids[0]]), 8) for r in top1[key]] for key in keys]
        columns = [visible(inspection.tokens[inspection.input_ids[s.position]]) for s in steps]
        ax.set_title("most probable next token at every exit (colour: its probability)", loc="left")
        ax.set_xlabel("after this token of the text")
    image = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(float(values.max()), 1e-12))
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(range(len(columns)), [short(c, 14) for c in columns], rotation=40, ha="right")
    ax.axhline(len(keys) - 1.5, color="black", linewidth=1.5)
    threshold = 0.6 * float(values.max())
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            colour = "white" if values[r, c] > threshold else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="probability")


def _bars(axes, inspection: Inspection, step: Step) -> None:
    names = summary_names(inspection)
    labels = [short(visible(inspection.tokens[t]), 12) for t in step.candidates]
    picks = {EXPERT: step.greedy_plain, AMATEUR: None, ACD: step.greedy_acd}
    colours = {EXPERT: "tab:blue", AMATEUR: "tab:orange", ACD: "tab:green"}
    x = np.arange(len(step.candidates))
    for ax, key in zip(axes, (EXPERT, AMATEUR, ACD)):
        probs = step.candidate_probs[key]
        colour = [colours[key] if t in step.plausible else "lightgray" for t in step.candidates]
        edges = ["black" if t == picks[key] else "none" for t in step.candidates]
        ax.bar(x, probs, color=colour, edgecolor=edges, linewidth=2)
        ax.set_ylim(0, 1.2 * max(max(probs), 1e-12))  # room for the pick's label
        ax.set_xticks(x, labels, rotation=50, ha="right", fontsize=8)
        ax.set_title(names[key], fontsize=10)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if picks[key] is not None:
            i = step.candidates.index(picks[key])
            ax.annotate("pick", (i, probs[i]), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    axes[0].set_ylabel("probability")


def draw(inspection: Inspection) -> Figure:
    """The whole figure; no pyplot, so no global state and no display needed."""
    width, height = figure_size(inspection)
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    heat_height = height - BARS_INCHES
    grid = fig.add_gridspec(2, 3, height_ratios=[heat_height, BARS_INCHES])
    _heat_map(fig.add_subplot(grid[0, :]), fig, inspection)
    bars = [fig.add_subplot(grid[1, i]) for i in range(3)]
    _bars(bars, inspection, inspection.steps[-1])
    fig.supxlabel(
        "bars: the candidate tokens of the last position; grey: outside the plausible set; outlined: the greedy pick",
        fontsize=9,
    )
    context = context_text(inspection, inspection.steps[-1], width=80).replace("\n", "\\n")
    fig.suptitle(f"next token after {context!r}", fontsize=11, ha="left", x=0.01)
    return fig


def figure_bytes(inspection: Inspection, fmt: str = "png") -> bytes:
    buffer = io.BytesIO()
    draw(inspection).savefig(buffer, format=fmt, dpi=DPI)
    return buffer.getvalue()


def save_figure(inspection: Inspection, path: str | os.PathLike[str], fmt: str) -> None:
    """Write the figure atomically: a killed run never leaves half a file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(figure_bytes(inspection, fmt))
