"""Paper App. C, Table 6: the final layer's original and new (trained) head, alone and as ACD's expert.

Four settings (L-orig, L-new, L-orig+ACD, L-new+ACD), each on greedy WikiText-103 diversity and
coherence, LAMBADA accuracy and WikiText-2 word perplexity. The pipeline already computes most
cells: ``benchmark_layers`` scores both heads alone, and ``generate_plain@greedy``,
``generate_acd@greedy`` and ``benchmark_acd`` decode and score with the expert that params
``expert`` names. The ``compare_heads_plain`` and ``compare_heads_acd`` stages compute only what is
left, with the *other* expert; :func:`gather` reads every cell by the expert its settings record
(``lens<N>`` or ``head<N>``), so no cell depends on which expert params name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from acd.reports import paper
from acd.eval.benchmarks import exit_point
from acd.errors import UsageError
from acd.reports.report import Table, expert_kind, fmt

SETTINGS = paper.TABLE6_SETTINGS  # ("original", "new", "original+acd", "new+acd")
DOMAIN = "wikitext"  # WikiText-103 prompts: the prompts stage's `wikitext` domain
STRATEGY = "greedy"
# Table 6's columns: (our key, lm-eval group, lm-eval metric); lambada_perplexity is Table 4's, kept beside.
BENCHMARK_METRICS = (
    ("lambada_accuracy", "lambada", "acc"),
    ("lambada_perplexity", "lambada", "perplexity"),
    ("wikitext_perplexity", "wikitext", "word_perplexity"),
)
GROUPS = ("lambada", "wikitext")


def other_expert(expert: str) -> str:
    """The expert kind params ``expert`` does not name: the one the compare_heads stages add."""
    return "new" if expert == "original" else "original"


def _greedy_cells(trees: Iterable[dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    """``{expert kind: cell}`` of the greedy WikiText-103 cells in generation-metrics trees."""
    cells = {}
    for tree in trees:
        cell = tree.get(STRATEGY, {}).get(DOMAIN)
        if cell is None:
            raise UsageError(
                f"compare_heads needs greedy {DOMAIN} generations in the {source} metrics: keep greedy in "
                f"generation.strategies and {DOMAIN} in prompts.domains"
            )
        cells[expert_kind(cell["settings"]["expert"])] = cell
    return cells


def _first_task(document: dict[str, Any]) -> tuple[str, dict[str, dict[str, float]]]:
    task = next(iter(document["results"]))
    return task, document["results"][task]


def _benchmarks_alone(layers: dict[str, dict[str, Any]], n_layers: int) -> dict[str, dict[str, float | None]]:
    """Both heads alone, from the per-exit sweep: lens<N> is the original head, head<N> the new one."""
    rows: dict[str, dict[str, float | None]] = {"original": {}, "new": {}}
    for key, group, metric in BENCHMARK_METRICS:
        task, by_exit = _first_task(layers[group])
        for kind, name in (("original", f"lens{n_layers}"), ("new", f"head{n_layers}")):
            if name not in by_exit:
                raise UsageError(
                    f"compare_heads needs exit {name} in metrics/benchmarks/{group}_layers.json ({task}): train a head "
                    f"on the last layer (train.exit_layers) and keep benchmarks.exits: all"
                )
            rows[kind][key] = by_exit[name].get(metric)
    return rows


def _benchmarks_acd(documents: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """``{original+acd|new+acd: metrics}`` from ACD benchmark documents (``{group: document}`` each)."""
    rows: dict[str, dict[str, float | None]] = {}
    for by_group in documents:
        expert = expert_kind(by_group[GROUPS[0]]["model"]["acd"]["expert"])
        rows[f"{expert}+acd"] = {key: _first_task(by_group[group])[1]["acd"].get(metric)
                                 for key, group, metric in BENCHMARK_METRICS}
    return rows


def gather(
    plain: Sequence[dict[str, Any]],
    acd: Sequence[dict[str, Any]],
    layers: dict[str, dict[str, Any]],
    acd_benchmarks: Sequence[dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The four settings of Table 6 from the pipeline's documents.

    ``plain`` / ``acd``: generation-metrics trees (strategy -> domain -> cell), one per expert;
    ``layers``: the per-exit sweep per group; ``acd_benchmarks``: ``{group: ACD document}``, one per expert.
    """
    plain_cells, acd_cells = _greedy_cells(plain, "plain"), _greedy_cells(acd, "ACD")
    cells = {**plain_cells, **{f"{kind}+acd": cell for kind, cell in acd_cells.items()}}
    missing = [setting for setting in SETTINGS if setting not in cells]
    if missing:
        raise UsageError(f"compare_heads has no greedy generations for {', '.join(missing)}: rerun compare_heads_plain "
                         "and compare_heads_acd")
    some = cells["original"]["settings"]
    n_layers = exit_point(some["expert"], {})[1]
    benchmarks = {**_benchmarks_alone(layers, n_layers), **_benchmarks_acd(acd_benchmarks)}
    table = {}
    for setting in SETTINGS:
        metrics = cells[setting]["metrics"]
        table[setting] = {"diversity": metrics.get("diversity"), "coherence": metrics.get("coherence"),
                          **benchmarks.get(setting, {})}
    acd_settings = cells["new+acd"]["settings"]
    settings = {
        "model": some.get("model"), "exit_layer": n_layers, "amateur": acd_settings.get("amateur"),
        "alpha": acd_settings.get("alpha"), "domain": DOMAIN, "strategy": STRATEGY,
        "lambada_task": _first_task(layers["lambada"])[0], "wikitext_task": _first_task(layers["wikitext"])[0],
        "n_prompts": cells["original"]["metrics"].get("n"),
    }
    return {"settings": settings, "table": table}


TABLE_COLUMNS = (("diversity", "greedy div"), ("coherence", "greedy coh"), ("lambada_accuracy", "LAMBADA acc"),
                 ("wikitext_perplexity", "WikiText-2 word ppl"), ("lambada_perplexity", "LAMBADA ppl"))


def report_table(document: dict[str, Any]) -> Table:
    """The four settings as ``ours (paper)`` beside Table 6 (Table 4 for LAMBADA ppl), in the paper's setting only.

    A row has paper numbers only when the run is the paper's setting (:func:`acd.reports.paper.paper_setting`:
    the model, the expert on its last layer, and for the +ACD rows the amateur head and alpha); any
    other row says "no paper number" in every cell.
    """
    settings, table = document["settings"], document["table"]
    n_layers = settings["exit_layer"]
    references = paper.table6_references(settings["model"], n_layers, settings["amateur"], settings["alpha"])
    digits = {"wikitext_perplexity": 1, "lambada_perplexity": 1}
    rows = []
    for setting in SETTINGS:
        reference = references[setting]
        name = f"L-{n_layers}{setting.replace('original', 'orig').replace('+acd', '+ACD')}"
        if reference is None:
            cells = [f"{fmt(table[setting].get(key), digits.get(key, 2))} ({paper.NO_PAPER_NUMBER})"
                     for key, _ in TABLE_COLUMNS]
        else:
            cells = [_cell(table[setting].get(key), reference.get(key), digits.get(key, 2)) for key, _ in TABLE_COLUMNS]
        rows.append([name] + cells)
    model = paper.canonical_model(settings["model"])
    shown = [setting for setting in SETTINGS if references[setting] is not None]
    source = f"ours (paper: {model}, Table 6; LAMBADA ppl: Table 4)" if shown else f"ours; {paper.NO_PAPER_NUMBER}"
    missing = "" if len(shown) == len(SETTINGS) else (
        f" Rows marked {paper.NO_PAPER_NUMBER!r} are not the paper's setting ({paper.setting_text(settings['model'])}).")
    note = (f"{source}. Model `{settings['model']}`, "
            f"exit layer {n_layers}: orig = the pretrained head, new = the trained head; +ACD = against amateur "
            f"{settings['amateur']}, alpha {settings['alpha']}. Greedy on {settings['n_prompts']} {DOMAIN} prompts; "
            f"LAMBADA = {settings['lambada_task']}, WikiText-2 = {settings['wikitext_task']}.{missing}")
    return Table(title="Original vs new expert head, alone and with ACD (paper App. C, Table 6)",
                 columns=["setting"] + [title for _, title in TABLE_COLUMNS], rows=rows, note=note)


def _cell(ours: float | None, theirs: float | None, digits: int) -> str:
    """``ours (paper)``, with the paper's part left out when it reports nothing for this cell in its setting."""
    return fmt(ours, digits) if theirs is None else f"{fmt(ours, digits)} ({fmt(theirs, digits)})"
