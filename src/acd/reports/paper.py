"""The paper's reported numbers (Gera et al., ACL 2023), in one place, for every report to compare with.

Values are transcribed from the paper (/work/shared/papers/002_*.txt, DESIGN.md §5). Nothing
here is computed; a report looks a cell up and prints it beside ours.
"""

from __future__ import annotations

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
    "EleutherAI/gpt-neo-125M": {
        "original": {"diversity": 0.12, "coherence": 0.60, "lambada_accuracy": 0.37, "wikitext_perplexity": 32.3},
        "new": {"diversity": 0.09, "coherence": 0.57, "lambada_accuracy": 0.31, "wikitext_perplexity": 38.5},
        "original+acd": {"diversity": 0.30, "coherence": 0.62, "lambada_accuracy": 0.53, "wikitext_perplexity": 68.1},
        "new+acd": {"diversity": 0.32, "coherence": 0.62, "lambada_accuracy": 0.50, "wikitext_perplexity": 71.8},
    },
}


def table6_model(name: str) -> tuple[str, str]:
    """The paper's Table 6 model matching ``name`` (gpt2-medium when none does), and how to label its columns."""
    for model in TABLE6_EXPERT_HEADS:
        if name.lower().rstrip("/").endswith(model.lower().split("/")[-1]):
            return model, "paper"
    return "gpt2-medium", "paper (gpt2-medium)"


# App. D: inter-annotator agreement (mean pairwise Cohen's kappa) of the human evaluation, per question.
HUMAN_EVAL_KAPPA = {"fluency": 0.15, "coherence": 0.34, "overall": 0.42}

# The paper's ACD setting per model: (expert layer, amateur layer).
ACD_LAYERS = {"gpt2-medium": (24, 12), "EleutherAI/gpt-neo-125M": (12, 8)}


def generation_reference(model: str, expert: str = "new") -> dict[str, Any] | None:
    """The paper's open-ended generation numbers for ``model`` and expert kind, or None if it reports none.

    With ``expert="new"`` that is Table 1 (GPT2-Medium) or Table 5 (GPT-Neo-125M). With the
    original head the paper reports only greedy on WikiText-103 (Table 6), so only that cell is
    filled; likewise for GPT2-XL (Table 3).
    """
    if model == "gpt2-xl":  # Table 3: the larger model, greedy on WikiText-103, original head
        return {"greedy": {"wikitext": {"plain": dict(TABLE3_SCALE["gpt2-xl"])}}}
    tables = {"gpt2-medium": TABLE1_GPT2_MEDIUM, "EleutherAI/gpt-neo-125M": TABLE5_GPT_NEO_125M}
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
    if model == "gpt2-xl":
        return "paper Table 3 (greedy WikiText-103 only)"
    table = {"gpt2-medium": "Table 1", "EleutherAI/gpt-neo-125M": "Table 5"}.get(model)
    if table is None:
        return "none (the paper reports no numbers for this model)"
    return f"paper {table}" if expert == "new" else "paper Table 6 (original head; greedy WikiText-103 only)"
