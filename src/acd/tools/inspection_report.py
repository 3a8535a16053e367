"""``acd inspect`` as text: rich tables for the terminal and static HTML pages.

Both read the same rows (:func:`step_rows`), so the terminal and the page never disagree.
Every piece of model or user text that reaches HTML goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from acd.tools.inspection import ACD, AMATEUR, EXPERT, GenerationInspection, Inspection, Ranked, Step


@dataclass(frozen=True)
class Cell:
    token: str
    prob: float
    plausible: bool | None  # None: not marked (the per-exit rows)
    plain_pick: bool
    acd_pick: bool


@dataclass(frozen=True)
class Row:
    name: str
    cells: tuple[Cell, ...]
    role: str  # "exit", or expert, amateur, ACD (the rows below the per-exit rows)

    @property
    def summary(self) -> bool:
        return self.role != "exit"


def visible(text: str) -> str:
    """A token's text with its spaces and control characters made visible (``' the'`` -> ``'␣the'``)."""
    text = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    stripped = text.strip(" ")
    lead, trail = len(text) - len(text.lstrip(" ")), len(text) - len(text.rstrip(" "))
    return "␣" * lead + stripped + "␣" * trail if stripped else "␣" * len(text)


def format_prob(prob: float) -> str:
    """Three decimals where they say something, scientific notation below 0.001."""
    return f"{prob:.3f}" if prob >= 1e-3 or prob == 0 else f"{prob:.1e}"


def exit_names(inspection: Inspection) -> dict[str, str]:
    """``str(Exit)`` -> row name, marking which exit is the expert and which the amateur."""
    contrast = inspection.contrast
    roles = {str(contrast.expert): EXPERT, str(contrast.amateur): AMATEUR}
    return {str(e): f"{e} ({roles[str(e)]})" if str(e) in roles else str(e) for e in inspection.exits}


def summary_names(inspection: Inspection) -> dict[str, str]:
    contrast = inspection.contrast
    amateur = f"{AMATEUR} {contrast.amateur}"
    if contrast.amateur_temperature != 1.0:
        amateur += f" /T={contrast.amateur_temperature:g}"
    return {EXPERT: f"{EXPERT} {contrast.expert}", AMATEUR: amateur, ACD: f"{ACD} (alpha={contrast.alpha:g})"}


def step_rows(inspection: Inspection, step: Step) -> list[Row]:
    """One row per exit, then expert, amateur and ACD with the plausible set marked."""

    def cells(ranked: Ranked, mark: bool) -> tuple[Cell, ...]:
        return tuple(
            Cell(
                token=visible(inspection.tokens[t]),
                prob=p,
                plausible=(t in step.plausible) if mark else None,
                plain_pick=mark and t == step.greedy_plain,
                acd_pick=mark and t == step.greedy_acd,
            )
            for t, p in zip(ranked.token_ids, ranked.probs)
        )

    names = exit_names(inspection)
    rows = [Row(names[key], cells(ranked, False), "exit") for key, ranked in step.exits.items()]
    summaries = summary_names(inspection)
    for key, ranked in ((EXPERT, step.expert), (AMATEUR, step.amateur), (ACD, step.acd)):
        rows.append(Row(summaries[key], cells(ranked, True), key))
    return rows


def context_text(inspection: Inspection, step: Step, width: int = 60) -> str:
    """The text the step conditions on, its tail if long."""
    text = "".join(inspection.tokens[t] for t in inspection.input_ids[: step.position + 1])
    return text if len(text) <= width else "…" + text[-width:]


def step_summary(inspection: Inspection, step: Step) -> str:
    tokens = inspection.tokens
    plain, chosen = visible(tokens[step.greedy_plain]), visible(tokens[step.greedy_acd])
    verdict = "ACD changes the choice" if step.changed else "same choice"
    line = (
        f"plausible set: {step.plausible_size} token(s); greedy plain: {plain!r}; "
        f"greedy ACD: {chosen!r} ({verdict})"
    )
    following = step.position + 1
    if following < len(inspection.input_ids):
        line += f"; next in text: {visible(tokens[inspection.input_ids[following]])!r}"
    return line


LEGEND = "* = in the plausible set; bold = greedy plain pick (expert row), green = greedy ACD pick (ACD row)"


def rich_step(inspection: Inspection, step: Step) -> Group:
    """The terminal table of one position, its title the context and its footer the choices."""
    rows = step_rows(inspection, step)
    ranks = max(len(row.cells) for row in rows)
    table = Table(title=Text(f"after {context_text(inspection, step)!r}"), title_justify="left")
    table.add_column("exit", no_wrap=True)
    for rank in range(1, ranks + 1):
        table.add_column(str(rank), no_wrap=True)
    for row, following in zip(rows, rows[1:] + [None]):
        texts = []
        for cell in row.cells:
            style = "bold green" if cell.acd_pick and row.role == ACD else ""
            style = "bold" if cell.plain_pick and row.role == EXPERT else style
            mark = "*" if cell.plausible else ""
            texts.append(Text(f"{cell.token}{mark} {format_prob(cell.prob)}", style=style))
        last_exit = following is not None and following.summary and not row.summary
        table.add_row(Text(row.name, style="bold" if row.summary else ""), *texts, end_section=last_exit)
    return Group(table, Text(step_summary(inspection, step)))


def print_inspection(console: Console, inspection: Inspection) -> None:
    for step in inspection.steps:
        console.print(rich_step(inspection, step))
    console.print(Text(LEGEND, style="dim"))


def print_generation(console: Console, generation: GenerationInspection) -> None:
    """Both continuations and the steps where ACD picked another token than the expert."""
    tokens = generation.inspection.tokens
    prompt = "".join(tokens[t] for t in generation.prompt_ids)
    lines = (("greedy:       ", generation.plain_text, "cyan"), ("greedy + ACD: ", generation.acd_text, "green"))
    for name, text, colour in lines:
        console.print(Text(name, style="bold") + Text(prompt) + Text(text, style=colour))
    table = Table(title="steps where ACD changed the greedy choice", title_justify="left")
    for column in ("step", "expert would pick", "ACD picks", "p_expert of ACD's pick"):
        table.add_column(column, no_wrap=True)
    for i in generation.changed_steps:
        step = generation.inspection.steps[i]
        chosen = generation.acd_ids[i]
        p_chosen = step.candidate_probs[EXPERT][step.candidates.index(chosen)] if chosen in step.candidates else None
        table.add_row(
            str(i + 1),
            Text(repr(visible(tokens[step.greedy_plain]))),
            Text(repr(visible(tokens[chosen]))),
            "" if p_chosen is None else format_prob(p_chosen),
        )
    console.print(table)
    console.print(f"{len(generation.changed_steps)} of {len(generation.acd_ids)} steps changed")


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.15em .45em;white-space:nowrap}
td.summary{font-weight:bold} .plausible{background:#e6f0ff} .plain{outline:2px solid #444}
.acd{background:#c8f0c8;font-weight:bold} .tok{font-family:ui-monospace,monospace}
.columns{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
.box{border:1px solid #ccc;padding:.7em;white-space:pre-wrap}
mark{background:#ffe08a} .scroll{overflow-x:auto} section.changed h3{color:#a15c00} img{max-width:100%}
"""


def html_page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def settings_html(model: str, inspection: Inspection) -> str:
    c = inspection.contrast
    return (
        f"<p>model <code>{html.escape(model)}</code>; expert <code>{c.expert}</code>, "
        f"amateur <code>{c.amateur}</code>, "
        f"alpha {c.alpha:g}. Shaded: in the plausible set; boxed: the greedy pick of the plain expert; "
        f"green: the greedy pick of ACD.</p>"
    )


def step_table_html(inspection: Inspection, step: Step, fold_exits: bool = False) -> str:
    """One position's rows as an HTML table; the per-exit rows can fold into a <details>."""

    def row_html(row: Row) -> str:
        cells = []
        for cell in row.cells:
            classes = ["tok"]
            if cell.plausible:
                classes.append("plausible")
            if cell.plain_pick and row.role == EXPERT:
                classes.append("plain")
            if cell.acd_pick and row.role == ACD:
                classes.append("acd")
            cells.append(f'<td class="{" ".join(classes)}">{html.escape(cell.token)} {format_prob(cell.prob)}</td>')
        name_class = ' class="summary"' if row.summary else ""
        return f"<tr><td{name_class}>{html.escape(row.name)}</td>{''.join(cells)}</tr>"

    rows = step_rows(inspection, step)
    summary = "".join(row_html(r) for r in rows if r.summary)
    exits = "".join(row_html(r) for r in rows if not r.summary)
    note = f"<p>{html.escape(step_summary(inspection, step))}</p>"
    if fold_exits:
        return (
            f"<div class=scroll><table>{summary}</table></div>{note}"
            f"<details><summary>every exit</summary><div class=scroll><table>{exits}</table></div></details>"
        )
    return f"<div class=scroll><table>{exits}{summary}</table></div>{note}"


def figure_html(model: str, inspection: Inspection, png: bytes) -> str:
    """The figure (embedded PNG) and the table of each inspected position, in one file."""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    parts = [settings_html(model, inspection), f'<img alt="exit heat map; expert, amateur, ACD bars" src="{source}">']
    for step in inspection.steps:
        parts.append(f"<h3>after <span class=tok>{html.escape(repr(context_text(inspection, step)))}</span></h3>")
        parts.append(step_table_html(inspection, step))
    return html_page("acd inspect", "\n".join(parts))


def generation_html(model: str, generation: GenerationInspection) -> str:
    """Plain and ACD continuations side by side; every step where ACD changed the choice is marked and linked."""
    inspection = generation.inspection
    tokens = inspection.tokens
    changed = set(generation.changed_steps)
    plain = "".join(f"<span>{html.escape(tokens[t])}</span>" for t in generation.plain_ids)
    chosen = "".join(
        f'<a href="#step-{i + 1}"><mark>{html.escape(tokens[t])}</mark></a>'
        if i in changed
        else f"<span>{html.escape(tokens[t])}</span>"
        for i, t in enumerate(generation.acd_ids)
    )
    prompt = html.escape("".join(tokens[t] for t in generation.prompt_ids))
    parts = [
        settings_html(model, inspection),
        f"<p>{len(changed)} of {len(generation.acd_ids)} steps changed by ACD (marked; click one to jump to it).</p>",
        '<div class="columns">',
        f'<div><h2>greedy</h2><div class="box"><b>{prompt}</b>{plain}</div></div>',
        f'<div><h2>greedy + ACD</h2><div class="box"><b>{prompt}</b>{chosen}</div></div>',
        "</div>",
        "<h2>step by step (greedy + ACD)</h2>",
    ]
    for i, step in enumerate(inspection.steps):
        token = html.escape(repr(visible(tokens[generation.acd_ids[i]])))
        expert_pick = html.escape(repr(visible(tokens[step.greedy_plain])))
        verdict = f"both pick {token}"
        if i in changed:
            verdict = f"ACD picks {token}, the expert alone would pick {expert_pick}"
        parts.append(
            f'<section id="step-{i + 1}"{" class=changed" if i in changed else ""}>'
            f"<h3>step {i + 1}: {verdict}</h3>"
            f"<p class=tok>{html.escape(repr(context_text(inspection, step)))}</p>"
            f"{step_table_html(inspection, step, fold_exits=True)}</section>"
        )
    return html_page("acd inspect: greedy with and without ACD", "\n".join(parts))
