"""Prompt sets: 32-word prompts with their true continuation, seeded; clear errors for bad sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from acd.pipeline import prompts
from acd.errors import UsageError
from acd.pipeline.jsonl import write_jsonl
from acd.pipeline.params import build
from acd.pipeline.prompts import PromptsParams, Source, build_prompts, detokenize, read_prompts

SAMPLES = ("wikitext", "wikinews", "bookcorpus")


def params(n_prompts: int = 5, **domains: Source) -> PromptsParams:
    return PromptsParams(domains=domains or {"d": Source(files=["acd-data:sample/wikitext.jsonl"])}, n_prompts=n_prompts)


@pytest.mark.parametrize("domain", SAMPLES)
def test_shipped_samples_make_prompts(domain: str) -> None:
    source = Source(files=[f"acd-data:sample/{domain}.jsonl"])
    rows = build_prompts(domain, source, params(10, **{domain: source}), seed=0)
    assert len(rows) == 10 and len({row["id"] for row in rows}) == 10
    for row in rows:
        assert len(row["prompt"].split()) == 32 and len(row["reference"].split()) >= 32
        assert row["domain"] == domain and row["id"].startswith(f"{domain}-")


def test_prompt_is_first_words_and_reference_the_rest(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(70)]
    write_jsonl(tmp_path / "a.jsonl", [{"text": " ".join(words)}, {"text": "too short to use"}])
    rows = build_prompts("d", Source(files=[str(tmp_path / "a.jsonl")]), params(1), seed=0)
    assert rows == [{"id": "d-0000000", "domain": "d", "prompt": " ".join(words[:32]), "reference": " ".join(words[32:])}]


def test_sample_is_seeded() -> None:
    source = Source(files=["acd-data:sample/wikinews.jsonl"])
    first = build_prompts("d", source, params(5), seed=1)
    assert first == build_prompts("d", source, params(5), seed=1)
    assert first != build_prompts("d", source, params(5), seed=2)


def test_wikitext_format_skips_headings_and_detokenizes(tmp_path: Path) -> None:
    body = " ".join(["word"] * 70)
    lines = [" = Du Fu = ", "", f" Du Fu 's comments are based on emotion rather than calculation : a 1 @-@ 2 view , {body} "]
    write_jsonl(tmp_path / "w.jsonl", [{"text": line} for line in lines])
    rows = build_prompts("w", Source(files=[str(tmp_path / "w.jsonl")], format="wikitext"), params(1), seed=0)
    assert rows[0]["prompt"].startswith("Du Fu's comments are based on emotion rather than calculation: a 1-2 view, word")


def test_hub_loader_path_with_local_data_files(tmp_path: Path) -> None:
    """The datasets code path (here its json builder), streamed because max_rows is set."""
    body = " ".join(["word"] * 70)
    write_jsonl(tmp_path / "w.jsonl", [{"line": " = Title = "}, {"line": f" It 's a 1 @-@ 2 test , {body} "}])
    source = Source(hub="json", data_files=[str(tmp_path / "w.jsonl")], split="train", text_field="line",
                    format="wikitext", max_rows=10)
    rows = build_prompts("w", source, params(1, w=source), seed=0)
    assert rows[0]["prompt"].startswith("It's a 1-2 test, word") and rows[0]["id"] == "w-0000000"


def test_join_rows_glues_sentences_into_passages(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s.jsonl", [{"text": f"sentence {i} has five words"} for i in range(40)])
    source = Source(files=[str(tmp_path / "s.jsonl")], join_rows=True)
    rows = build_prompts("s", source, params(3), seed=0)  # 200 words -> 3 passages of 65 words
    assert len(rows) == 3 and all(len((row["prompt"] + " " + row["reference"]).split()) == 65 for row in rows)
    with pytest.raises(UsageError, match="n_prompts=3 is more than domain 's' has: 2 passages"):
        build_prompts("s", Source(files=[str(tmp_path / "s.jsonl")], join_rows=True, max_rows=30), params(3), seed=0)


def test_too_few_passages_names_the_domain() -> None:
    with pytest.raises(UsageError, match=r"^prompts\.n_prompts=50 is more than domain 'wikinews' has: 12 passages of at least min_words=64"):
        build_prompts("wikinews", Source(files=["acd-data:sample/wikinews.jsonl"]), params(50), seed=0)


def test_empty_or_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UsageError, match=r"^prompts\.domains\.d\.files='.*empty\.jsonl' is empty"):
        build_prompts("d", Source(files=[str(tmp_path / "empty.jsonl")]), params(1), seed=0)
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(UsageError, match=r"line 2 needs string field\(s\) 'text'"):
        build_prompts("d", Source(files=[str(tmp_path / "bad.jsonl")]), params(1), seed=0)
    (tmp_path / "prompts.jsonl").write_text("")
    with pytest.raises(UsageError, match=r"^prompts='.*prompts\.jsonl' is empty"):
        read_prompts(tmp_path / "prompts.jsonl")
    with pytest.raises(UsageError, match=r"does not exist: run the prompts stage first"):
        read_prompts(tmp_path / "missing.jsonl")


def test_unloadable_hub_dataset_says_how_to_go_offline() -> None:
    source = Source(hub="no-such-user/no-such-dataset", split="test")
    with pytest.raises(UsageError, match=r"^prompts\.domains\.news: hub dataset 'no-such-user/no-such-dataset' .* cannot be "
                       r"loaded .*set prompts\.domains\.news\.files to local jsonl files.*`acd demo`"):
        build_prompts("news", source, params(1), seed=0)


def test_params_schema() -> None:
    data = {"n_prompts": 2, "domains": {"w": {"hub": "wikitext", "config": "wikitext-103-raw-v1", "split": "test",
                                              "format": "wikitext"}}}
    built = build(PromptsParams, data, "prompts")
    assert built.domains["w"] == Source(hub="wikitext", config="wikitext-103-raw-v1", split="test", format="wikitext")
    with pytest.raises(UsageError, match=r"prompts\.domains\.w is not allowed: give exactly one of hub .* or files"):
        build(PromptsParams, {"domains": {"w": {"hub": "x", "files": ["y"]}}}, "prompts")
    with pytest.raises(UsageError, match=r"prompts\.domains\.w\.format='md' is not allowed"):
        build(PromptsParams, {"domains": {"w": {"hub": "x", "format": "md"}}}, "prompts")
    with pytest.raises(UsageError, match=r"prompts\.min_words=32 is not allowed: it must exceed prompt_words=32"):
        build(PromptsParams, {"min_words": 32, "domains": {"w": {"hub": "x"}}}, "prompts")
    assert build(PromptsParams, {"domains": {"b": {"hub": "x", "format": "bookcorpus"}}}, "prompts").domains["b"].format \
        == "bookcorpus"
    with pytest.raises(UsageError, match=r"^prompts\.domains\.b\.join_rows=true is not allowed with format: bookcorpus"):
        build(PromptsParams, {"domains": {"b": {"hub": "x", "format": "bookcorpus", "join_rows": True}}}, "prompts")


@pytest.mark.parametrize(
    ("tokenized", "plain"),
    [
        ("you 're late , he said .", "you're late, he said."),
        ("i do n't know . she did n't either ! we ca n't .", "i don't know. she didn't either! we can't."),
        ("he 's here ; they 've gone : we 'll see , i 'd say , i 'm sure ?", "he's here; they've gone: we'll see, i'd say, i'm sure?"),
        ("`` hey , '' she said .", '"hey," she said.'),
        ('" you \'re late , " said the captain . " the road was blocked . "',
         '"you\'re late," said the captain. "the road was blocked."'),
        ("it cost $ 5 ( or so ) ... really", "it cost $5 (or so)... really"),
        ("  already   plain , text.  ", "already plain, text."),
        ("", ""),
    ],
)
def test_detokenize_undoes_the_ptb_tokenization(tokenized: str, plain: str) -> None:
    assert detokenize(tokenized) == plain


BOOK_ROWS = [
    "she stood at the gate .",  # one short sentence: never a passage of its own, never joined to others
    " ".join(["word"] * 50) + " .",  # 51 words: kept (more than 50)
    " ".join(["word"] * 50),  # exactly 50 words: not kept
    # 59 tokens: kept (51 words once detokenized)
    ("`` you 're late , '' said the captain , and he did n't look up from the map spread across the table "
     "while tom closed the door behind him , shook the snow from his coat and waited by the fire for the "
     "others to come in from the yard where the horses stood in the cold ."),
    "she stood at the gate .",
]


def test_bookcorpus_keeps_single_long_rows_detokenized(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the authors (data_processing/): single rows of more than 50 words, detokenized; rows are never joined."""
    read: list[Source] = []
    monkeypatch.setattr(prompts, "hub_texts", lambda source, where: read.append(source) or iter(BOOK_ROWS))
    source = Source(hub="bookcorpus/bookcorpus", format="bookcorpus", max_rows=1000)
    texts = list(prompts.passages(source, 64, "prompts.domains.bookcorpus"))
    captain = ('"you\'re late," said the captain, and he didn\'t look up from the map spread across the table while '
               "tom closed the door behind him, shook the snow from his coat and waited by the fire for the others to "
               "come in from the yard where the horses stood in the cold.")
    assert texts == [" ".join(["word"] * 50) + ".", captain]
    assert prompts.BOOKCORPUS_MIN_ROW_WORDS == 50 and read == [source]
    small = PromptsParams(domains={"bookcorpus": source}, n_prompts=2, prompt_words=32, min_words=40)
    rows = build_prompts("bookcorpus", source, small, seed=0)
    assert [row["id"] for row in rows] == ["bookcorpus-0000000", "bookcorpus-0000001"]
    assert rows[1]["prompt"].startswith('"you\'re late," said the captain,') and "``" not in rows[1]["prompt"]
    # max_rows bounds the rows scanned, as before: the long rows lie beyond the first two.
    limited = Source(hub="bookcorpus/bookcorpus", format="bookcorpus", max_rows=1)
    assert list(prompts.passages(limited, 64, "prompts.domains.bookcorpus")) == []
