"""rep-n and diversity on hand-made texts with known values, including texts shorter than n words."""

from __future__ import annotations

import math

import pytest

from acd.eval.diversity import diversity, diversity_summary, ngram_counts, rep_n


def test_rep_n_counts_every_window() -> None:
    text = "a b a b a b"  # 5 bigrams: ab ba ab ba ab -> 2 unique
    assert ngram_counts(text.split(), 2) == (2, 5)
    assert rep_n(text, 2) == pytest.approx(100 * (1 - 2 / 5))
    assert rep_n(text, 3) == pytest.approx(100 * (1 - 2 / 4))  # aba bab aba bab
    assert rep_n(text, 4) == pytest.approx(100 * (1 - 2 / 3))
    assert diversity(text) == pytest.approx((2 / 5) * (2 / 4) * (2 / 3))


def test_no_repetition_is_diversity_one_and_whitespace_tokens() -> None:
    assert diversity("the cat sat on the mat") == pytest.approx(1.0)
    # Whitespace words, not model tokens: punctuation glued to a word is part of it.
    assert rep_n("mat. mat mat.", 2) == 0.0
    assert rep_n("the  cat\nthe \t cat", 2) == pytest.approx(100 * (1 - 2 / 3))


@pytest.mark.parametrize("text", ["", "one", "one two", "one two three"])
def test_texts_shorter_than_four_words_have_undefined_diversity(text: str) -> None:
    assert diversity(text) is None
    assert rep_n(text, 4) is None


def test_short_text_defines_lower_orders_only() -> None:
    assert rep_n("x x x", 2) == pytest.approx(50.0)
    assert rep_n("x x x", 3) == 0.0
    assert rep_n("x x x", 4) is None


def test_summary_per_example_vs_corpus() -> None:
    repetitive = "a b a b a b"
    fresh = "one two three four five six seven"
    summary = diversity_summary([repetitive, fresh, "too short"])
    # Per example: mean over the texts that have 4-grams; the short text is counted apart.
    assert summary["diversity"] == pytest.approx(((2 / 5) * (2 / 4) * (2 / 3) + 1.0) / 2)
    assert summary["n_short"] == 1
    # rep-2 per example also covers the 2-word text (it has one bigram, no repeat).
    assert summary["rep_2"] == pytest.approx((60.0 + 0.0 + 0.0) / 3)
    # Corpus: pooled counts (SimCTG sums unique and total per text).
    unique2, total2 = 2 + 6 + 1, 5 + 6 + 1
    unique3, total3 = 2 + 5, 4 + 5
    unique4, total4 = 2 + 4, 3 + 4
    assert summary["rep_2_corpus"] == pytest.approx(100 * (1 - unique2 / total2))
    assert summary["diversity_corpus"] == pytest.approx(math.prod(u / t for u, t in [(unique2, total2), (unique3, total3), (unique4, total4)]))


def test_summary_of_only_short_texts_is_undefined() -> None:
    summary = diversity_summary(["", "a b"])
    assert summary["diversity"] is None and summary["diversity_corpus"] is None and summary["n_short"] == 2
