"""Prompt sets for open-ended generation (paper §4.2.1): the first 32 words of a passage, its rest kept as reference.

A domain's passages come from a hub dataset (streamed when ``max_rows`` is set) or from local
jsonl files with a ``text`` field. ``format: wikitext`` skips WikiText's `` = Heading = `` lines
and undoes its tokenization (`` @-@ ``, `` , ``) with lm-eval's detokenizer, so prompts read as
the paper's do ("Du Fu's political comments are based on emotion rather than calculation:").
``format: bookcorpus`` follows the authors' BookCorpus processing (IBM/auto-contrastive-generation,
``data_processing/``): single rows of more than 50 words (:data:`BOOKCORPUS_MIN_ROW_WORDS`, counted
on the row as stored), never joined across rows, detokenized (:func:`detokenize`: the hub copy is
PTB-tokenized, " you 're late , "). ``join_rows`` instead glues consecutive rows into passages of
``min_words`` words: a generic option for one-sentence-per-row corpora, not the authors' recipe.

Where we choose otherwise than the authors, and why:

- Wikinews: the authors' Wikinews source is gated (not downloadable without the owner's approval),
  so we read ``malteos/wikinews`` (English, every publication period), an open dump of the same
  site. Prompts are still the first 32 words of an article, but not from the same articles.
- BookCorpus is read from its hub parquet conversion, and only the first ``max_rows`` rows are
  scanned (params.yaml: 1M of ~74M) so the stage streams a bounded amount; the authors' rows of
  more than 50 words are picked within those rows.
- ``min_words`` (every domain; params.yaml 64) is ours: a passage must leave a reference
  continuation after the ``prompt_words`` prompt. With 64, BookCorpus keeps rows of at least 64
  words after detokenizing, stricter than the authors' more than 50.
- ``n_prompts``: the paper does not say how many prompts it drew per domain.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from acd.errors import OFFLINE_RUN, UsageError
from acd.io import package_data
from acd.pipeline.jsonl import read_jsonl



@dataclass(frozen=True)
class Source:
    """Where one domain's passages come from: ``hub`` (a dataset id) or ``files`` (local jsonl)."""

    hub: str | None = None
    config: str | None = None
    split: str | None = None  # None: every split, concatenated
    revision: str | None = None
    data_files: list[str] | None = None  # for hub loaders like json/parquet/text on local or remote files
    files: list[str] | None = None
    text_field: str = "text"
    format: Literal["plain", "wikitext", "bookcorpus"] = "plain"
    join_rows: bool = False  # glue consecutive rows into passages (not with format: bookcorpus, which never joins)
    max_rows: int | None = None  # read at most this many rows (huge corpora), streaming from the hub


@dataclass(frozen=True)
class PromptsParams:
    """params.yaml ``prompts``: the paper's 32-word prompts from three domains."""

    domains: dict[str, Source]
    n_prompts: int = 1000
    prompt_words: int = 32
    min_words: int = 64

    def __post_init__(self) -> None:
        if not self.domains:
            raise UsageError("prompts.domains is empty: name at least one domain with its source")
        if self.n_prompts < 1:
            raise UsageError(f"prompts.n_prompts={self.n_prompts} is out of range: it must be >= 1")
        if self.prompt_words < 1:
            raise UsageError(f"prompts.prompt_words={self.prompt_words} is out of range: it must be >= 1")
        if self.min_words <= self.prompt_words:
            raise UsageError(
                f"prompts.min_words={self.min_words} is not allowed: it must exceed prompt_words="
                f"{self.prompt_words} so every prompt has a reference continuation"
            )
        for name, source in self.domains.items():
            if (source.hub is None) == (source.files is None):
                raise UsageError(
                    f"prompts.domains.{name} is not allowed: "
                    "give exactly one of hub (a dataset id) or files (local jsonl)"
                )
            if source.max_rows is not None and source.max_rows < 1:
                raise UsageError(f"prompts.domains.{name}.max_rows={source.max_rows} is out of range: >= 1 or null")
            if source.join_rows and source.format == "bookcorpus":
                raise UsageError(f"prompts.domains.{name}.join_rows=true is not allowed with format: bookcorpus, "
                                 "which keeps single rows (the authors'): drop join_rows")


def hub_texts(source: Source, where: str) -> Iterator[str]:
    """Rows of a hub dataset; a failure to load becomes one line saying how to go offline."""
    import datasets

    try:
        data = datasets.load_dataset(
            source.hub, source.config, split=source.split, revision=source.revision, data_files=source.data_files,
            streaming=source.max_rows is not None,
        )
        splits = isinstance(data, (datasets.DatasetDict, datasets.IterableDatasetDict))
        parts = list(data.values()) if splits else [data]
        for part in parts:
            for row in part:
                yield row[source.text_field]
    except Exception as error:  # datasets raises many types (hub, network, builder, missing column)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"{where}: hub dataset {source.hub!r} (config {source.config!r}, split {source.split!r}) cannot be "
            f"loaded ({first}); offline, set {where}.files to local jsonl files with a {source.text_field!r} field "
            f"(acd ships samples: acd-data:sample/<wikitext|wikinews|bookcorpus>.jsonl), {OFFLINE_RUN}"
        ) from None


def raw_texts(source: Source, where: str) -> Iterator[str]:
    if source.files is not None:
        for name in source.files:
            for row in read_jsonl(package_data(name), [source.text_field], f"{where}.files"):
                yield row[source.text_field]
    else:
        yield from hub_texts(source, where)


def wikitext_paragraphs(texts: Iterable[str]) -> Iterator[str]:
    """WikiText lines minus headings, detokenized (lm-eval's WikiText detokenizer)."""
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    for text in texts:
        stripped = text.strip()
        if not stripped or (stripped.startswith("=") and stripped.endswith("=")):
            continue
        yield wikitext_detokenizer({"page": stripped}).strip()


# The authors' BookCorpus rule (data_processing/): keep single rows of MORE than this many words.
BOOKCORPUS_MIN_ROW_WORDS = 50

_QUOTES = ((re.compile(r"``\s*"), '"'), (re.compile(r"\s*''"), '"'))  # PTB's opening and closing double quotes
_DETOKENIZE_RULES = (
    (re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)(?=\s|$|[^\w'])", re.IGNORECASE), r"\1"),  # do n't -> don't
    (re.compile(r" ([.,;:!?%)\]}])"), r"\1"),  # no space before closing punctuation
    (re.compile(r"([($\[{]) "), r"\1"),  # nor after opening brackets and currency
)


def detokenize(text: str) -> str:
    """Undo PTB-style tokenization, as the authors do to BookCorpus rows (``data_processing/``).

    A pure function of the text:

    - PTB quotes: an opening two-backtick quote and a closing two-apostrophe quote become ``"``,
      joined to the word after / before them; straight ``"`` tokens pair up, opening then closing;
    - clitics rejoin the word before: ``do n't`` -> ``don't``, likewise 're 's 've 'll 'd 'm;
    - closing punctuation (, . ; : ! ? % ) ] } and ...) joins the word before it, opening brackets
      and ``$`` the word after;
    - runs of whitespace collapse to one space; letter case is left as it is (BookCorpus is lower case).
    """
    text = " ".join(text.split())
    for pattern, replacement in _QUOTES:
        text = pattern.sub(replacement, text)
    words: list[str] = []
    opening, glue = True, False
    for word in text.split(" ") if text else []:
        if word == '"':
            if opening:
                words.append(word)
                glue = True
            elif words:
                words[-1] += word
            else:
                words.append(word)
            opening = not opening
            continue
        if glue:
            words[-1] += word
            glue = False
        else:
            words.append(word)
    text = " ".join(words)
    for pattern, replacement in _DETOKENIZE_RULES:
        text = pattern.sub(replacement, text)
    return text


def bookcorpus_rows(texts: Iterable[str]) -> Iterator[str]:
    """The authors' BookCorpus passages: single rows of more than :data:`BOOKCORPUS_MIN_ROW_WORDS` words, detokenized."""
    for text in texts:
        if len(text.split()) > BOOKCORPUS_MIN_ROW_WORDS:
            yield detokenize(text)


def joined(texts: Iterable[str], min_words: int) -> Iterator[str]:
    """Consecutive rows glued into passages of at least ``min_words`` words."""
    buffer: list[str] = []
    for text in texts:
        buffer.extend(text.split())
        if len(buffer) >= min_words:
            yield " ".join(buffer)
            buffer = []


def passages(source: Source, min_words: int, where: str) -> Iterator[str]:
    """The domain's passages, before length filtering."""
    texts: Iterable[str] = raw_texts(source, where)
    if source.max_rows is not None:
        texts = (text for _, text in zip(range(source.max_rows), texts))
    if source.format == "wikitext":
        texts = wikitext_paragraphs(texts)
    if source.format == "bookcorpus":
        texts = bookcorpus_rows(texts)
    if source.join_rows:
        texts = joined(texts, min_words)
    return iter(texts)


def build_prompts(domain: str, source: Source, params: PromptsParams, seed: int) -> list[dict[str, Any]]:
    """``n_prompts`` seeded picks among passages of at least ``min_words`` words, in source order."""
    where = f"prompts.domains.{domain}"
    long_enough = [
        (index, text.split())
        for index, text in enumerate(passages(source, params.min_words, where))
        if len(text.split()) >= params.min_words
    ]
    if len(long_enough) < params.n_prompts:
        raise UsageError(
            f"prompts.n_prompts={params.n_prompts} is more than domain {domain!r} has: {len(long_enough)} passages "
            f"of at least min_words={params.min_words} words; lower n_prompts or min_words, or give {where} more text"
        )
    picked = sorted(random.Random(f"{seed}/{domain}").sample(range(len(long_enough)), params.n_prompts))
    rows = []
    for position in picked:
        index, tokens = long_enough[position]
        rows.append(
            {
                "id": f"{domain}-{index:07d}",
                "domain": domain,
                "prompt": " ".join(tokens[: params.prompt_words]),
                "reference": " ".join(tokens[params.prompt_words :]),
            }
        )
    return rows


def read_prompts(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A prompt file written by the prompts stage; missing, empty or malformed is a UsageError."""
    return read_jsonl(path, ["id", "prompt"], "prompts", ": run the prompts stage first")
