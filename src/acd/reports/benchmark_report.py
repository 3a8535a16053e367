"""The benchmark report: per-exit tables, ACD beside the paper (Tables 4 and 6), and where ACD moves accuracy.

Inputs are the metrics documents of :mod:`acd.eval.benchmarks` per group: the per-layer sweep
(``layers``) and the ACD run (``acd``). Output is Markdown, readable in a terminal.
"""

from __future__ import annotations

from typing import Any

from acd.eval.benchmarks import exit_point
from acd.reports.paper import NO_PAPER_NUMBER, setting_text, table6_references


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _contrast_label(acd: dict[str, Any]) -> str:
    settings = acd["model"]["acd"]
    return f"acd ({settings['expert']} vs {settings['amateur']}, alpha {settings['alpha']:g})"


def exit_tables(group: str, layers: dict[str, Any], acd: dict[str, Any] | None) -> str:
    """One table per task: every swept exit, then the ACD model, by metric."""
    parts = []
    for task, by_exit in layers["results"].items():
        rows_by_name = dict(by_exit)
        if acd is not None and task in acd["results"]:
            rows_by_name[_contrast_label(acd)] = acd["results"][task]["acd"]
        metrics = sorted({m for values in rows_by_name.values() for m in values if "stderr" not in m})
        rows = [[name] + [_number(values.get(m)) for m in metrics] for name, values in rows_by_name.items()]
        parts.append(f"### {group}: {task}\n\n" + _table(["exit"] + metrics, rows))
    return "\n\n".join(parts)


def _first(document: dict[str, Any] | None, name: str, metric: str) -> float | None:
    if document is None:
        return None
    task = next(iter(document["results"]))
    return document["results"][task].get(name, {}).get(metric)


def paper_table(docs: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Original head, new head and ACD on LAMBADA and WikiText-2, beside Table 6 (and Table 4's perplexity).

    Paper columns hold a number only where the run is the paper's setting (model, the expert on the last
    layer, and for the +acd rows the ACD run's amateur head and alpha); elsewhere they say "no paper number".
    """
    layers, acd = docs.get("layers", {}), docs.get("acd", {})
    source = next(iter(layers.values()), None) or next(iter(acd.values()), None)
    if source is None:
        return ""
    model_name = source["model"]["model_name"]
    n_layers = max(exit_point(name, source["model"])[1] for by_exit in source["results"].values() for name in by_exit)
    contrast = next(iter(acd.values()))["model"]["acd"] if acd else {}
    expert = contrast.get("expert")
    references = table6_references(model_name, n_layers, contrast.get("amateur"), contrast.get("alpha"))
    settings = {"orig": f"lens{n_layers}", "new": f"head{n_layers}"}
    rows = []
    for setting in ("orig", "new", "orig+acd", "new+acd"):
        is_acd = setting.endswith("+acd")
        if is_acd:  # we ran ACD with one expert; the other +ACD row stays empty
            ours = "acd" if expert == settings[setting.removesuffix("+acd")] else None
        else:
            ours = settings[setting]
        lambada = layers.get("lambada") if not is_acd else acd.get("lambada")
        wikitext = layers.get("wikitext") if not is_acd else acd.get("wikitext")
        reference = references[setting.replace("orig", "original")]
        theirs = {key: NO_PAPER_NUMBER if reference is None else _number(reference.get(key))
                  for key in ("lambada_accuracy", "lambada_perplexity", "wikitext_perplexity")}
        rows.append([
            f"L-{n_layers}{setting}",
            _number(_first(lambada, ours, "acc") if ours else None), theirs["lambada_accuracy"],
            _number(_first(lambada, ours, "perplexity") if ours else None), theirs["lambada_perplexity"],
            _number(_first(wikitext, ours, "word_perplexity") if ours else None), theirs["wikitext_perplexity"],
        ])
    header = ["setting", "LAMBADA acc", "paper T6", "LAMBADA ppl", "paper T4", "WikiText-2 word ppl", "paper T6"]
    note = (f"Model `{model_name}`; orig = the pretrained head (lens{n_layers}), new = the trained head "
            f"(head{n_layers}); our ACD row is the one whose expert is `{expert}`"
            + (f" (amateur {contrast.get('amateur')}, alpha {contrast.get('alpha')})" if contrast else "") + ".")
    if any(reference is None for reference in references.values()):
        note += f" Paper cells saying {NO_PAPER_NUMBER!r}: not the paper's setting ({setting_text(model_name)})."
    return _table(header, rows) + "\n\n" + note


def direction_table(docs: dict[str, dict[str, dict[str, Any]]]) -> str:
    """For each accuracy task: the plain expert vs ACD, and whether ACD moves accuracy up or down."""
    rows = []
    for group, acd in docs.get("acd", {}).items():
        layers = docs.get("layers", {}).get(group)
        expert = acd["model"]["acd"]["expert"]
        for task, by_exit in acd["results"].items():
            plain = (layers or {}).get("results", {}).get(task, {}).get(expert, {})
            for metric in ("acc", "acc_norm"):
                if metric not in by_exit["acd"] or metric not in plain:
                    continue
                change = by_exit["acd"][metric] - plain[metric]
                direction = "up" if change > 1e-12 else "down" if change < -1e-12 else "same"
                rows.append([task, metric, expert, _number(plain[metric]), _number(by_exit["acd"][metric]),
                             f"{change:+.4f}", direction])
    if not rows:
        return ""
    return _table(["task", "metric", "expert", "expert alone", "ACD", "change", "ACD moves it"], rows)


def render(docs: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The whole report; ``docs`` is ``{"layers": {group: document}, "acd": {group: document}}``."""
    sections = ["# Benchmarks: per exit and with ACD (lm-evaluation-harness)"]
    beside = paper_table(docs)
    if beside:
        sections.append("## Beside the paper (Table 4: LAMBADA; Table 6: original vs new head)\n\n" + beside)
    moves = direction_table(docs)
    if moves:
        sections.append("## ACD vs the plain expert: does ACD move accuracy up or down?\n\n" + moves)
    groups = list(dict.fromkeys([*docs.get("layers", {}), *docs.get("acd", {})]))
    for group in groups:
        layers = docs.get("layers", {}).get(group)
        if layers is not None:
            sections.append(f"## {group}: per exit\n\n" + exit_tables(group, layers, docs.get("acd", {}).get(group)))
    return "\n\n".join(sections) + "\n"
