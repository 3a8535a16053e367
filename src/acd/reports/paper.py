"""The paper's reported numbers (Gera et al., ACL 2023), in one place, for every report to compare with.

Values are transcribed from the paper's tables and appendices (https://aclanthology.org/2023.acl-long.580,
arXiv:2305.01628). Nothing here is computed; a report looks a cell up and prints it beside ours.

A paper number stands beside ours only when the run is the paper's setting (:func:`paper_setting`):
the same model (:func:`canonical_model`, the one normalisation of model names), the expert on
the model's last layer, and for ACD the paper's amateur exit head and alpha. Anywhere else a
report says "no paper number" (:data:`NO_PAPER_NUMBER`).
"""

from __future__ import annotations

import math
import re
from typing import Any

DOMAINS = ("wikitext", "wikinews", "bookcorpus")
STRATEGIES = ("greedy", "beam", "top-k", "top-p")


def _generation_table(rows: dict[str, tuple[float, ...]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{"greedy": (div, coh) x 3 domains, "greedy+acd": ...}`` -> strategy -> domain -> plain|acd -> metrics."""
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for name, values in rows.items():
        strategy, _, acd = name.partition("+")
        kind = "acd" if acd else "plain"
        for index, domain in enumerate(DOMAINS):
            diversity, coherence = values[2 * index], values[2 * index + 1]
            table.setdefault(strategy, {}).setdefault(domain, {})[kind] = {
                "diversity": diversity,
                "coherence": coherence,
            }
    return table


# Table 1: GPT2-Medium, new expert head (layer 24) vs exit head 12, alpha 0.1; div / coh per domain.
TABLE1_GPT2_MEDIUM = _generation_table(
    {
        "greedy": (0.21, 0.59, 0.23, 0.57, 0.14, 0.40),
        "greedy+acd": (0.75, 0.63, 0.74, 0.61, 0.62, 0.50),
        "beam": (0.20, 0.61, 0.24, 0.60, 0.08, 0.35),
        "beam+acd": (0.57, 0.62, 0.58, 0.61, 0.37, 0.48),
        "top-k": (0.96, 0.57, 0.96, 0.55, 0.97, 0.42),
        "top-k+acd": (0.96, 0.61, 0.96, 0.59, 0.96, 0.47),
        "top-p": (0.98, 0.50, 0.98, 0.49, 0.98, 0.36),
        "top-p+acd": (0.98, 0.55, 0.98, 0.54, 0.98, 0.41),
    }
)

# Table 5: GPT-Neo-125M, new expert head (layer 12) vs exit head 8.
TABLE5_GPT_NEO_125M = _generation_table(
    {
        "greedy": (0.09, 0.57, 0.08, 0.54, 0.06, 0.35),
        "greedy+acd": (0.32, 0.62, 0.32, 0.61, 0.20, 0.49),
        "beam": (0.08, 0.59, 0.08, 0.56, 0.05, 0.33),
        "beam+acd": (0.15, 0.60, 0.15, 0.60, 0.10, 0.48),
        "top-k": (0.95, 0.56, 0.95, 0.54, 0.95, 0.40),
        "top-k+acd": (0.91, 0.62, 0.92, 0.60, 0.92, 0.48),
        "top-p": (0.98, 0.48, 0.98, 0.47, 0.98, 0.35),
        "top-p+acd": (0.97, 0.56, 0.97, 0.54, 0.97, 0.41),
    }
)

# Table 3: scale (greedy, WikiText-103); GPT2-Medium here uses its ORIGINAL head.
TABLE3_SCALE = {
    "gpt2-medium": {"diversity": 0.22, "coherence": 0.63},
    "gpt2-xl": {"diversity": 0.31, "coherence": 0.63},
    "gpt2-medium+acd": {"diversity": 0.75, "coherence": 0.63},
}

# Table 4: LAMBADA accuracy and perplexity.
TABLE4_LAMBADA = {
    "gpt2-medium": {"accuracy": 0.43, "perplexity": 18.3},
    "gpt2-xl": {"accuracy": 0.51, "perplexity": 10.6},
    "gpt2-medium+acd": {"accuracy": 0.55, "perplexity": 15.4},
}

# Table 6: original vs new expert head (greedy WikiText-103 div/coh, LAMBADA acc, WikiText-2 word ppl).
TABLE6_EXPERT_HEADS: dict[str, dict[str, dict[str, float]]] = {
    "gpt2-medium": {
        "original": {"diversity": 0.22, "coherence": 0.63, "lambada_accuracy": 0.43, "wikitext_perplexity": 26.8},
        "new": {"diversity": 0.21, "coherence": 0.59, "lambada_accuracy": 0.39, "wikitext_perplexity": 30.0},
        "original+acd": {"diversity": 0.62, "coherence": 0.64, "lambada_accuracy": 0.56, "wikitext_perplexity": 71.3},
        "new+acd": {"diversity": 0.75, "coherence": 0.63, "lambada_accuracy": 0.55, "wikitext_perplexity": 57.2},
    },
    "gpt-neo-125m": {
        "original": {"diversity": 0.12, "coherence": 0.60, "lambada_accuracy": 0.37, "wikitext_perplexity": 32.3},
        "new": {"diversity": 0.09, "coherence": 0.57, "lambada_accuracy": 0.31, "wikitext_perplexity": 38.5},
        "original+acd": {"diversity": 0.30, "coherence": 0.62, "lambada_accuracy": 0.53, "wikitext_perplexity": 68.1},
        "new+acd": {"diversity": 0.32, "coherence": 0.62, "lambada_accuracy": 0.50, "wikitext_perplexity": 71.8},
    },
}


# App. D: inter-annotator agreement (mean pairwise Cohen's kappa) of the human evaluation, per question.
HUMAN_EVAL_KAPPA = {"fluency": 0.15, "coherence": 0.34, "overall": 0.42}

# --- which runs are the paper's setting ------------------------------------------------------------

NO_PAPER_NUMBER = "no paper number"

# Hub ids (lower-cased) of the paper's models -> their canonical names. Local paths never match.
PAPER_MODEL_IDS = {
    "gpt2-medium": "gpt2-medium",
    "openai-community/gpt2-medium": "gpt2-medium",
    "eleutherai/gpt-neo-125m": "gpt-neo-125m",
    "gpt2-xl": "gpt2-xl",
    "openai-community/gpt2-xl": "gpt2-xl",
}

# The paper's ACD setting per model: (expert layer, amateur layer); both are exit heads (head<L>), the
# expert new or original (App. C); alpha ACD_ALPHA. GPT2-XL: its original head alone (Tables 3, 4).
ACD_LAYERS = {"gpt2-medium": (24, 12), "gpt-neo-125m": (12, 8)}
ACD_ALPHA = 0.1
XL_LAYERS = 48

_EXIT = re.compile(r"(head|lens)(\d+)")


def canonical_model(name: str | None) -> str | None:
    """The paper's model a run's model name is ('gpt2-medium', 'gpt-neo-125m' or 'gpt2-xl'), else None.

    The one normalisation of model names for every report: hub ids in any casing, with or without
    the ``openai-community/`` organisation (GPT-2) and with ``EleutherAI/`` (GPT-Neo). A local path
    never matches, whatever its last folder is called: its weights need not be the paper's.
    """
    return PAPER_MODEL_IDS.get(name.lower()) if isinstance(name, str) else None


def paper_setting(model: str | None, expert: str | None, amateur: str | None = None,
                  alpha: float | None = None) -> tuple[str, str] | None:
    """``(canonical model, expert kind)`` when a run is the paper's setting, else None.

    ``expert`` is an exit name: ``head<L>`` (the trained head: kind ``new``) or ``lens<L>`` (the
    pretrained lm_head: ``original``), and must sit on the paper's expert layer (the last). With
    ``amateur`` (an ACD run) the amateur must be the paper's trained exit head (``head12`` for
    GPT2-Medium, ``head8`` for GPT-Neo-125M) and ``alpha`` 0.1; without it the run is the expert alone.
    """
    name = canonical_model(model)
    match = _EXIT.fullmatch(expert) if isinstance(expert, str) else None
    if name is None or match is None:
        return None
    kind, layer = ("original" if match.group(1) == "lens" else "new"), int(match.group(2))
    if name == "gpt2-xl":  # the paper reports GPT2-XL's original head alone, never with ACD
        return (name, kind) if (kind, layer, amateur) == ("original", XL_LAYERS, None) else None
    expert_layer, amateur_layer = ACD_LAYERS[name]
    if layer != expert_layer:
        return None
    if amateur is not None:
        paper_alpha = isinstance(alpha, (int, float)) and math.isclose(alpha, ACD_ALPHA)
        if amateur != f"head{amateur_layer}" or not paper_alpha:
            return None
    return name, kind


def setting_text(model: str | None) -> str:
    """The paper's setting for ``model``, for notes saying why a row has no paper number."""
    name = canonical_model(model)
    if name is None:
        return f"the paper reports no numbers for model {model!r}"
    if name == "gpt2-xl":
        return f"the paper reports {name} only with its original head (lens{XL_LAYERS}) alone"
    expert, amateur = ACD_LAYERS[name]
    return (f"the paper's setting for {name}: expert head{expert} (new) or lens{expert} (original), "
            f"ACD against amateur head{amateur}, alpha {ACD_ALPHA}")


TABLE6_SETTINGS = ("original", "new", "original+acd", "new+acd")


def table6_references(model: str | None, exit_layer: int, amateur: str | None,
                      alpha: float | None) -> dict[str, dict[str, float | None] | None]:
    """Table 6's cells (and Table 4's LAMBADA perplexity) per setting, None where the run is not the paper's.

    The settings are the final exit's original head (``lens<exit_layer>``) and new head
    (``head<exit_layer>``), alone and with ACD against ``amateur`` at ``alpha`` (None: no ACD run,
    so the +acd settings have no paper number). A model Table 6 does not report gets none at all.
    """
    references: dict[str, dict[str, float | None] | None] = {}
    name = canonical_model(model)
    for setting in TABLE6_SETTINGS:
        kind, _, acd = setting.partition("+")
        expert = f"{'lens' if kind == 'original' else 'head'}{exit_layer}"
        matched = (acd == "" or amateur is not None) and paper_setting(
            model, expert, amateur if acd else None, alpha if acd else None) is not None
        if not matched or name not in TABLE6_EXPERT_HEADS:
            references[setting] = None
            continue
        table4 = {"original": TABLE4_LAMBADA.get(name), "new+acd": TABLE4_LAMBADA.get(f"{name}+acd")}.get(setting)
        references[setting] = {**TABLE6_EXPERT_HEADS[name][setting],
                               "lambada_perplexity": (table4 or {}).get("perplexity")}
    return references


def generation_reference(model: str, expert: str = "new") -> dict[str, Any] | None:
    """The paper's open-ended generation numbers for ``model`` and expert kind, or None if it reports none.

    A plain table look-up: whether a run is in the paper's setting at all is :func:`paper_setting`'s
    question, which every report asks first.

    With ``expert="new"`` that is Table 1 (GPT2-Medium) or Table 5 (GPT-Neo-125M). With the
    original head the paper reports only greedy on WikiText-103 (Table 6), so only that cell is
    filled; likewise for GPT2-XL (Table 3).
    """
    model = canonical_model(model) or model
    if model == "gpt2-xl":  # Table 3: the larger model, greedy on WikiText-103, original head
        return {"greedy": {"wikitext": {"plain": dict(TABLE3_SCALE["gpt2-xl"])}}}
    tables = {"gpt2-medium": TABLE1_GPT2_MEDIUM, "gpt-neo-125m": TABLE5_GPT_NEO_125M}
    if model not in tables:
        return None
    if expert == "new":
        return tables[model]
    heads = TABLE6_EXPERT_HEADS[model]
    pick = ("diversity", "coherence")
    return {
        "greedy": {
            "wikitext": {
                "plain": {key: heads["original"][key] for key in pick},
                "acd": {key: heads["original+acd"][key] for key in pick},
            }
        }
    }


def generation_source(model: str, expert: str = "new") -> str:
    """Which table :func:`generation_reference` took its numbers from, for captions."""
    model = canonical_model(model) or model
    if model == "gpt2-xl":
        return "paper Table 3 (greedy WikiText-103 only)"
    table = {"gpt2-medium": "Table 1", "gpt-neo-125m": "Table 5"}.get(model)
    if table is None:
        return "none (the paper reports no numbers for this model)"
    return f"paper {table}" if expert == "new" else "paper Table 6 (original head; greedy WikiText-103 only)"
