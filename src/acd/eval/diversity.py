"""n-gram repetition and diversity: pure functions over whitespace words.

SimCTG's definition (Su et al. 2022), as the paper's §4.2.1 uses it:

rep-n = 100 · (1 − unique n-grams / all n-grams); diversity = Π_{n=2,3,4} (1 − rep-n / 100).
The ACD authors average diversity per example; SimCTG pools the counts over the corpus
(sums of per-text unique and total counts). We report both, named ``diversity`` and
``diversity_corpus``.

Two documented choices:
- "all n-grams" of an m-word text are its m − n + 1 windows. SimCTG's reference loop stops one
  window early (``while end_idx < len``), so it misses each text's last n-gram; we do not.
- A text with fewer than n words has no n-grams: its rep-n is undefined (None), not 0, so
  empty or one-word outputs cannot look perfectly diverse. Per-example means skip undefined
  values and report how many texts had no 4-gram (``n_short``); the corpus-level counts simply
  get nothing from such a text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

NGRAM_ORDERS = (2, 3, 4)


def words(text: str) -> list[str]:
    return text.split()


def ngram_counts(tokens: Sequence[str], n: int) -> tuple[int, int]:
    """(unique, total) n-grams of ``tokens``; (0, 0) when there are fewer than n tokens."""
    total = max(len(tokens) - n + 1, 0)
    unique = len({tuple(tokens[start : start + n]) for start in range(total)})
    return unique, total


def rep_from_counts(unique: int, total: int) -> float | None:
    return None if total == 0 else 100.0 * (1.0 - unique / total)


def rep_n(text: str, n: int) -> float | None:
    """rep-n of one text in percent, or None when it has fewer than n words."""
    return rep_from_counts(*ngram_counts(words(text), n))


def diversity_from_reps(reps: Iterable[float | None]) -> float | None:
    reps = list(reps)
    if any(rep is None for rep in reps):
        return None
    return math.prod(1.0 - rep / 100.0 for rep in reps)  # type: ignore[operator]


def diversity(text: str) -> float | None:
    """Per-text diversity, or None when the text is shorter than 4 words."""
    return diversity_from_reps(rep_n(text, n) for n in NGRAM_ORDERS)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return sum(kept) / len(kept) if kept else None


def diversity_summary(texts: Sequence[str]) -> dict[str, float | int | None]:
    """Per-example means (the paper's ``diversity``, ``rep_n``) and corpus-level pooled values (``*_corpus``)."""
    tokenized = [words(text) for text in texts]
    summary: dict[str, float | int | None] = {}
    per_text_reps = []
    corpus_reps = []
    for n in NGRAM_ORDERS:
        counts = [ngram_counts(tokens, n) for tokens in tokenized]
        reps = [rep_from_counts(*count) for count in counts]
        per_text_reps.append(reps)
        pooled = rep_from_counts(sum(u for u, _ in counts), sum(t for _, t in counts))
        corpus_reps.append(pooled)
        summary[f"rep_{n}"] = _mean(reps)
        summary[f"rep_{n}_corpus"] = pooled
    summary["diversity"] = _mean(diversity_from_reps(reps) for reps in zip(*per_text_reps))
    summary["diversity_corpus"] = diversity_from_reps(corpus_reps)
    summary["n_short"] = sum(1 for tokens in tokenized if len(tokens) < max(NGRAM_ORDERS))
    return summary
