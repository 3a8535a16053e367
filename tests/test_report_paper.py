"""Paper numbers appear beside a run only in the paper's setting: its model, expert, amateur layer and alpha."""

from __future__ import annotations

import pytest

from acd.eval.compare_heads import SETTINGS, report_table
from acd.reports import paper
from acd.reports.benchmark_report import render
from acd.reports.report import generation_tables, render_markdown

NO = "no paper number"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("gpt2-medium", "gpt2-medium"), ("openai-community/gpt2-medium", "gpt2-medium"),
        ("OpenAI-Community/GPT2-Medium", "gpt2-medium"), ("EleutherAI/gpt-neo-125M", "gpt-neo-125m"),
        ("eleutherai/GPT-NEO-125m", "gpt-neo-125m"), ("gpt2-xl", "gpt2-xl"), ("openai-community/gpt2-xl", "gpt2-xl"),
        ("gpt2", None), ("gpt2-large", None), ("my-org/gpt2-medium", None), ("models/gpt2-medium", None),
        ("/data/EleutherAI/gpt-neo-125M", None), ("./gpt2-medium", None), ("gpt2-medium/", None), ("", None),
        (None, None),
    ],
)
def test_one_model_name_normalisation(name: str | None, canonical: str | None) -> None:
    assert paper.canonical_model(name) == canonical


def generation_metrics(model: str, expert: str = "head24", amateur: str = "head12", alpha: float = 0.1) -> dict:
    cell = {"diversity": 0.2, "coherence": 0.5}
    acd_cell = {"diversity": 0.7, "coherence": 0.6}
    return {"settings": {"model": model, "expert": expert, "acd": {"amateur": amateur, "alpha": alpha}},
            "table": {"greedy": {"wikitext": {"plain": cell, "acd": acd_cell}}}}


def generation_markdown(*args: object, **kwargs: object) -> str:
    """The main table (div/coh beside the paper), without the details."""
    return render_markdown(generation_tables(generation_metrics(*args, **kwargs))[:1])  # type: ignore[arg-type]


def table6_document(model: str, exit_layer: int = 24, amateur: str = "head12", alpha: float = 0.1) -> dict:
    row = {"diversity": 0.5, "coherence": 0.5, "lambada_accuracy": 0.5, "wikitext_perplexity": 50.0,
           "lambada_perplexity": 20.0}
    settings = {"model": model, "exit_layer": exit_layer, "amateur": amateur, "alpha": alpha, "domain": "wikitext",
                "strategy": "greedy", "lambada_task": "lambada_openai", "wikitext_task": "wikitext", "n_prompts": 3}
    return {"settings": settings, "table": {setting: dict(row) for setting in SETTINGS}}


def table6_markdown(*args: object, **kwargs: object) -> str:
    return render_markdown([report_table(table6_document(*args, **kwargs))])  # type: ignore[arg-type]


def benchmark_markdown(model: str, n_layers: int = 24, amateur: str = "head12", alpha: float = 0.1) -> str:
    info = {"model_name": model, "acd": {"expert": f"head{n_layers}", "amateur": amateur, "alpha": alpha}}
    layers = {"lambada": {"model": info, "results": {"lambada_openai": {
        f"head{n_layers}": {"acc": 0.39, "perplexity": 20.0}, f"lens{n_layers}": {"acc": 0.43, "perplexity": 18.0}}}}}
    acd = {"lambada": {"model": info, "results": {"lambada_openai": {"acd": {"acc": 0.55, "perplexity": 15.0}}}}}
    return render({"layers": layers, "acd": acd})


def rows_of(markdown: str, start: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith(start)]


def test_gpt2_xl_gets_no_paper_cell() -> None:
    # Table 6 has no GPT2-XL: none of GPT2-Medium's numbers stand in for it.
    markdown = table6_markdown("gpt2-xl", exit_layer=48)
    rows = rows_of(markdown, "| L-48")
    assert len(rows) == 4 and all(row.count("(no paper number)") == 5 for row in rows), rows
    assert "(0.22)" not in markdown and "gpt2-medium" not in markdown
    bench = benchmark_markdown("gpt2-xl", n_layers=48)
    for row in rows_of(bench, "| L-48"):
        assert row.count(NO) >= 2 and "0.43 | 0.43" not in row, row
    assert "26.8" not in bench and "| 0.56 |" not in bench
    # Generation: no GPT2-XL trained head or ACD in the paper.
    generation = generation_markdown("gpt2-xl", expert="head48", amateur="head24")
    assert "(0.21)" not in generation and "(0.31)" not in generation
    assert rows_of(generation, "| greedy |") == [f"| greedy | 0.20 ({NO}) | 0.50 ({NO}) |"]
    # Its original head alone, greedy on WikiText-103, is the paper's Table 3 setting.
    original = generation_markdown("openai-community/gpt2-xl", expert="lens48", amateur="head24")
    assert rows_of(original, "| greedy |") == ["| greedy | 0.20 (0.31) | 0.50 (0.63) |"]
    assert rows_of(original, "| greedy + ACD |") == [f"| greedy + ACD | 0.70 ({NO}) | 0.60 ({NO}) |"]


@pytest.mark.parametrize("model", ["gpt2-medium", "openai-community/gpt2-medium"])
def test_gpt2_medium_hub_ids_get_table_1_and_table_6_in_the_paper_setting(model: str) -> None:
    generation = generation_markdown(model)
    assert rows_of(generation, "| greedy |") == ["| greedy | 0.20 (0.21) | 0.50 (0.59) |"]  # Table 1
    assert rows_of(generation, "| greedy + ACD |") == ["| greedy + ACD | 0.70 (0.75) | 0.60 (0.63) |"]
    assert "paper Table 1" in generation and NO not in generation
    table6 = table6_markdown(model)
    orig = "| L-24orig | 0.50 (0.22) | 0.50 (0.63) | 0.50 (0.43) | 50.0 (26.8) | 20.0 (18.3) |"
    new_acd = "| L-24new+ACD | 0.50 (0.75) | 0.50 (0.63) | 0.50 (0.55) | 50.0 (57.2) | 20.0 (15.4) |"
    assert rows_of(table6, "| L-24orig |") == [orig] and rows_of(table6, "| L-24new+ACD |") == [new_acd]
    assert "paper: gpt2-medium, Table 6" in table6 and NO not in table6
    bench = benchmark_markdown(model)
    assert "| L-24orig | 0.43 | 0.43 | 18 | 18.3 | — | 26.8 |" in bench
    assert "| L-24new+acd | 0.55 | 0.55 | 15 | 15.4 | — | 57.2 |" in bench and NO not in bench


def test_gpt_neo_hub_id_in_any_casing_gets_table_5_and_table_6() -> None:
    generation = generation_markdown("eleutherai/GPT-Neo-125M", expert="head12", amateur="head8")
    assert rows_of(generation, "| greedy + ACD |") == ["| greedy + ACD | 0.70 (0.32) | 0.60 (0.62) |"]
    table6 = table6_markdown("EleutherAI/gpt-neo-125M", exit_layer=12, amateur="head8")
    assert rows_of(table6, "| L-12new+ACD |")[0].startswith("| L-12new+ACD | 0.50 (0.32) | 0.50 (0.62) | 0.50 (0.50) |")


@pytest.mark.parametrize(("amateur", "alpha"), [("head8", 0.1), ("head12", 0.2), ("lens12", 0.1)])
def test_other_amateur_or_alpha_gets_no_paper_number(amateur: str, alpha: float) -> None:
    generation = generation_markdown("gpt2-medium", amateur=amateur, alpha=alpha)
    assert rows_of(generation, "| greedy + ACD |") == [f"| greedy + ACD | 0.70 ({NO}) | 0.60 ({NO}) |"]
    assert rows_of(generation, "| greedy |") == ["| greedy | 0.20 (0.21) | 0.50 (0.59) |"]  # no amateur: still Table 1
    table6 = table6_markdown("gpt2-medium", amateur=amateur, alpha=alpha)
    for name in ("L-24orig+ACD", "L-24new+ACD"):
        assert rows_of(table6, f"| {name} |")[0].count(f"({NO})") == 5
    assert rows_of(table6, "| L-24orig |")[0].startswith("| L-24orig | 0.50 (0.22) |")
    bench = benchmark_markdown("gpt2-medium", amateur=amateur, alpha=alpha)
    assert f"| L-24new+acd | 0.55 | {NO} | 15 | {NO} | — | {NO} |" in bench
    assert "| L-24orig | 0.43 | 0.43 | 18 | 18.3 |" in bench


def test_expert_off_the_last_layer_or_local_path_gets_no_paper_number() -> None:
    generation = generation_markdown("gpt2-medium", expert="head20")
    assert "(0.21)" not in generation and "(0.75)" not in generation and NO in generation
    details = render_markdown(generation_tables(generation_metrics("gpt2-medium", expert="head20"))[1:])
    assert len(rows_of(details, "| greedy")) == 2  # the details table keeps every row, paper or not
    local = generation_markdown("/models/gpt2-medium")
    assert "(0.21)" not in local and NO in local
    assert rows_of(table6_markdown("gpt2-medium", exit_layer=12), "| L-12orig |")[0].count(f"({NO})") == 5
