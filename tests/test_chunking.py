"""The chunk stage: CC-100 rows tokenized as they are and concatenated -> fixed-length blocks, exactly and reproducibly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import acd.pipeline.chunking as chunking
from acd.pipeline.chunking import CorpusParams, chunk_corpus, corpus_rows, load_blocks
from acd.errors import UsageError
from acd.core.loading import load_tokenizer

BLOCK = 16


def cc100_rows(documents: list[list[str]]) -> list[str]:
    """CC-100's layout: one paragraph a row (its line ending kept), a blank row after each document."""
    return [row for paragraphs in documents for row in [p + "\n" for p in paragraphs] + ["\n"]]


def write_corpus(directory: Path) -> tuple[list[Path], list[str], list[str | None]]:
    """Three files (CC-100-shaped .txt and .parquet, a .jsonl of whole documents) -> files, rows in order, and
    per row its jsonl document text (None for a CC-100 row); 40 documents in all."""
    words = "the river town grew rich on the wool trade and its market hall still stands by the bridge".split()
    documents = [[" ".join(words[: 1 + (7 * i + j) % len(words)]) + f" ({i}.{j})." for j in range(1 + i % 3)]
                 for i in range(40)]
    documents[5] = ["A much longer paragraph. " * 12, "And a short one."]
    directory.mkdir(parents=True, exist_ok=True)
    txt_rows = cc100_rows(documents[:15])[:-1]  # the last document ends where the file does, with no blank row
    txt_rows.insert(txt_rows.index("\n") + 1, "   \n")  # a whitespace-only row is blank too
    txt_rows.insert(0, "\n")  # a blank row before the first document
    txt = directory / "a.txt"
    txt.write_text("".join(txt_rows), encoding="utf-8")
    jsonl = directory / "b.jsonl"
    texts = ["\n".join(paragraphs) for paragraphs in documents[15:30]]
    jsonl.write_text("".join(json.dumps({"text": text, "id": i}) + "\n" for i, text in enumerate(texts)),
                     encoding="utf-8")
    parquet = directory / "c.parquet"
    parquet_rows = cc100_rows(documents[30:]) + ["", "\n"]
    pq.write_table(pa.table({"text": parquet_rows}), parquet)
    rows = txt_rows + texts + parquet_rows
    return [txt, jsonl, parquet], rows, [None] * len(txt_rows) + texts + [None] * len(parquet_rows)


def units(rows: list[str], records: list[str | None]) -> int:
    """What n_documents counts: every CC-100 row (blank ones too) and every jsonl record with text."""
    return sum(1 for record in records if record is None or record.strip())


def expected_stream(tokenizer, rows: list[str], records: list[str | None]) -> list[int]:
    """The authors' stream: every CC-100 row's tokens as they are, concatenated, no EOS; a jsonl document + EOS."""
    stream = []
    for row, record in zip(rows, records):
        stream += tokenizer(row)["input_ids"] if record is None else tokenizer(record)["input_ids"] + [
            tokenizer.eos_token_id]
    return stream


def corpus_for(files: list[Path], **changes: object) -> CorpusParams:
    settings = {"source": "files", "files": [str(path) for path in files], "n_documents": 1000,
                "block_size": BLOCK, "val_blocks": 3, "shard_documents": 7, "tokenize_batch": 4, **changes}
    return CorpusParams(**settings)  # type: ignore[arg-type]


CC100 = ["Para one.\n", "Para two.\n", "\n", "Doc two.\n"]


@pytest.mark.parametrize("source", ["hub", "txt", "parquet"])
def test_cc100_rows_are_tokenized_as_they_are_and_concatenated(tiny_gpt2: Path, tmp_path: Path, source: str) -> None:
    """As the authors (head_training_utils.py): each row's text with its line ending, rows concatenated, no EOS."""
    if source == "txt":
        (tmp_path / "cc.txt").write_text("".join(CC100), encoding="utf-8")
        corpus = corpus_for([tmp_path / "cc.txt"], block_size=2, val_blocks=1)
    else:
        pq.write_table(pa.table({"id": list(range(len(CC100))), "text": CC100}), tmp_path / "cc.parquet")
        corpus = corpus_for([tmp_path / "cc.parquet"], block_size=2, val_blocks=1)
        if source == "hub":  # the datasets streaming branch, through its parquet builder
            corpus = CorpusParams(source="hub", hub_id="parquet", revision=None,
                                  data_files=[str(tmp_path / "cc.parquet")], block_size=2, val_blocks=1)
    tokenizer = load_tokenizer(tiny_gpt2)
    authors = [token for row in CC100 for token in tokenizer(row)["input_ids"]]
    newline = tokenizer("\n")["input_ids"]
    assert newline == [198] and authors.count(198) == 4  # every row's line ending, the blank row's too
    manifest = chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    blocks = load_blocks(tmp_path / "blocks")
    got = np.concatenate([blocks.val, blocks.train]).ravel().tolist()
    assert manifest["tokens"] == len(authors) and got == authors[: len(authors) // 2 * 2]
    assert tokenizer.eos_token_id not in got  # the authors put no EOS: zero document boundaries marked
    assert manifest["documents"] == 4  # n_documents counts rows, the blank one too (the paper's 20M instances)
    first = chunk_corpus(CorpusParams(**{**corpus.__dict__, "n_documents": 3}), str(tiny_gpt2), tmp_path / "three",
                         tmp_path / "work1")
    assert first["n_documents"] == 3 and first["documents"] == 3
    assert first["tokens"] == len(authors) - len(tokenizer("Doc two.\n")["input_ids"])


def test_blocks_are_the_rows_concatenated_and_cut_exactly(tiny_gpt2: Path, tmp_path: Path) -> None:
    files, rows, records = write_corpus(tmp_path / "corpus")
    manifest = chunk_corpus(corpus_for(files), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    tokenizer = load_tokenizer(tiny_gpt2)
    eos = tokenizer.eos_token_id
    stream = expected_stream(tokenizer, rows, records)
    n_blocks = len(stream) // BLOCK
    blocks = load_blocks(tmp_path / "blocks")
    assert blocks.val.shape == (3, BLOCK) and blocks.train.shape == (n_blocks - 3, BLOCK)
    assert blocks.train.dtype == np.uint16
    got = np.concatenate([blocks.val, blocks.train]).ravel().tolist()
    assert got == stream[: n_blocks * BLOCK]  # order, rows as they are, EOS only after jsonl documents
    assert got.count(eos) == 15 and got.count(198) > 40
    assert manifest["documents"] == units(rows, records) and manifest["tokens"] == len(stream)
    assert manifest["dropped_tokens"] == len(stream) % BLOCK
    assert manifest["blocks"] == {"train": n_blocks - 3, "val": 3}
    assert manifest["vocab_size"] == 50257 and manifest["eos_token_id"] == eos and manifest["dtype"] == "uint16"
    assert manifest["tokenizer"] == str(tiny_gpt2) and manifest["block_size"] == BLOCK
    assert [entry["name"] for entry in manifest["corpus"]["files"]] == [str(path) for path in files]
    assert json.loads((tmp_path / "blocks" / "manifest.json").read_text()) == manifest
    assert not (tmp_path / "work").exists()


def test_first_n_documents_and_determinism(tiny_gpt2: Path, tmp_path: Path) -> None:
    files, _, _ = write_corpus(tmp_path / "corpus")
    first = chunk_corpus(corpus_for(files, n_documents=20), str(tiny_gpt2), tmp_path / "one", tmp_path / "w1")
    assert first["documents"] == 20
    # Other tokenizer batching, shard size and two tokenizer processes: byte-identical output.
    chunk_corpus(corpus_for(files, n_documents=20, tokenize_batch=3, shard_documents=100, num_proc=2),
                 str(tiny_gpt2), tmp_path / "two", tmp_path / "w2")
    for name in ("train.npy", "val.npy", "manifest.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_killed_run_resumes_from_finished_shards(tiny_gpt2: Path, tmp_path: Path, monkeypatch) -> None:
    files, _, _ = write_corpus(tmp_path / "corpus")
    corpus = corpus_for(files)
    reference = chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "reference", tmp_path / "w0")

    real_write, written = chunking._write_shard, []

    def write_then_die(work, shard, tokens, dtype):
        if len(written) == 3:
            raise KeyboardInterrupt  # as if killed while tokenizing the fourth shard
        real_write(work, shard, tokens, dtype)
        written.append(shard.index)

    monkeypatch.setattr(chunking, "_write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    assert not (tmp_path / "blocks").exists() and len(chunking.finished_shards(tmp_path / "work")) == 3

    monkeypatch.setattr(chunking, "_write_shard", real_write)
    encoded: list[str] = []
    real_encode = chunking.encode_documents
    monkeypatch.setattr(chunking, "encode_documents",
                        lambda documents, tok=None: encoded.extend(documents) or real_encode(documents, tok))
    assert chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work") == reference
    _, rows, records = write_corpus(tmp_path / "again")
    assert len(encoded) == units(rows, records) - 3 * 7  # only the documents after the finished shards
    for name in ("train.npy", "val.npy"):
        assert (tmp_path / "blocks" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


def test_work_made_by_the_old_eos_stream_is_not_resumed(tiny_gpt2: Path, tmp_path: Path) -> None:
    """Shards from before rows were kept as they are (no token_stream in spec.json) are thrown away, not mixed in."""
    files, _, _ = write_corpus(tmp_path / "corpus")
    corpus = corpus_for(files)
    reference = chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "reference", tmp_path / "w0")
    tokenizer = load_tokenizer(tiny_gpt2)
    spec = chunking._work_spec(corpus, str(tiny_gpt2), chunking.tokenizer_fingerprint(tokenizer))
    del spec["token_stream"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "spec.json").write_text(json.dumps(spec))
    old = chunking.Shard(index=0, documents=7, rows=7, tokens=BLOCK)
    chunking._write_shard(work, old, np.full(BLOCK, tokenizer.eos_token_id), np.dtype(np.uint16))
    assert chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "blocks", work) == reference


def test_packaged_sample_corpus(tiny_gpt2: Path, tmp_path: Path) -> None:
    corpus = CorpusParams(source="files", files=["acd-data:sample/corpus.jsonl"], n_documents=50, block_size=128,
                          val_blocks=2)
    manifest = chunk_corpus(corpus, str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    assert manifest["documents"] == 50 and manifest["blocks"]["train"] > 10


def test_hub_source_streams_parquet_rows(tmp_path: Path) -> None:
    """The hub branch (datasets streaming + skip), run on a local parquet file through the parquet builder."""
    rows = ["One.\n", "\n", "Two.\n", "Three.\n"]
    pq.write_table(pa.table({"id": [0, 1, 2, 3], "text": rows}), tmp_path / "x.parquet")
    corpus = CorpusParams(source="hub", hub_id="parquet", revision=None, data_files=[str(tmp_path / "x.parquet")])
    assert list(corpus_rows(corpus)) == ["One.\n", "\n", "Two.\n", "Three.\n"]
    assert list(corpus_rows(corpus, skip=3)) == ["Three.\n"]


def test_unreachable_hub_names_the_offline_params(tiny_gpt2: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError,
                       match=r"^corpus.hub_id='statmt/cc100' cannot be read .*corpus.source: files.*`acd demo`"):
        chunk_corpus(CorpusParams(n_documents=10), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    assert not (tmp_path / "blocks").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "bad.txt").write_bytes(b"fine line\ncaf\xe9 au lait\n"), r"bad.txt' is not UTF-8 \(line 2"),
        (lambda d: (d / "empty.txt").write_text("\n  \n"), r"empty.txt.\] holds no documents \(every row is blank\)"),
        (lambda d: (d / "short.txt").write_text("Just a few words.\n"), r"too few for corpus.val_blocks=3"),
        (lambda d: (d / "x.jsonl").write_text('{"body": "hi"}\n'), r"^corpus.text_field='text': line 1"),
        (lambda d: (d / "x.csv").write_text("a\n"), r"x.csv' is not allowed: use .txt, .jsonl, .parquet"),
    ],
)
def test_bad_corpus_is_one_usage_error_and_writes_nothing(tiny_gpt2: Path, tmp_path: Path, make, message) -> None:
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    make(corpus_dir)
    with pytest.raises(UsageError, match=message):
        chunk_corpus(corpus_for(sorted(corpus_dir.iterdir())), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus"]


def test_bad_params(tiny_gpt2: Path, tmp_path: Path) -> None:
    files, _, _ = write_corpus(tmp_path / "corpus")
    with pytest.raises(UsageError, match=r"^corpus.block_size=2048 is not allowed: .* reads at most 1024 positions"):
        chunk_corpus(corpus_for(files, block_size=2048), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    with pytest.raises(UsageError, match=r"^corpus.files: 'nope.txt' does not exist"):
        chunk_corpus(corpus_for([Path("nope.txt")]), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "work")
    with pytest.raises(UsageError, match=r"^corpus.n_documents=0 is not allowed"):
        corpus_for(files, n_documents=0)
    with pytest.raises(UsageError, match=r"^corpus.files=\[\] is not allowed"):
        CorpusParams(source="files")
    assert not (tmp_path / "blocks").exists()


def test_cli_chunk_bad_input_is_one_line_exit_2(tiny_gpt2: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe not utf-8\n")
    (tmp_path / "params.yaml").write_text(
        f"model: {tiny_gpt2}\ncorpus:\n  source: files\n  files: [bad.txt]\n  block_size: 16\n  val_blocks: 1\n")
    result = subprocess.run([sys.executable, "-m", "acd.tools.cli", "chunk"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: corpus.files: 'bad.txt' is not UTF-8 (line 1, invalid start byte): convert it with "
                      "iconv or drop it"] and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_corpus_shorter_than_asked_warns_and_the_manifest_records_both(
    tiny_gpt2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files, rows, records = write_corpus(tmp_path / "corpus")
    manifest = chunk_corpus(corpus_for(files, n_documents=10_000), str(tiny_gpt2), tmp_path / "blocks", tmp_path / "w")
    assert manifest["n_documents"] == 10_000 and manifest["documents"] == units(rows, records)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: the corpus holds {units(rows, records)} documents, fewer than "
                        "corpus.n_documents=10000: all of them are used (manifest.json records both counts)"]


def test_sigkilled_chunk_stage_resumes_to_the_same_bytes(tiny_gpt2: Path, tmp_path: Path) -> None:
    """`chunk` killed for real (SIGKILL once a shard is done), then run again: the uninterrupted run's bytes."""
    import signal
    import time

    import yaml

    paragraphs = [f"Row {i} of a long corpus tells how the {i % 7}th bridge was built in the year {1700 + i}.\n"
                  for i in range(20_000)]
    (tmp_path / "cc.txt").write_text("".join(p + ("\n" if i % 5 == 4 else "") for i, p in enumerate(paragraphs)))
    corpus = {"source": "files", "files": [str(tmp_path / "cc.txt")], "n_documents": 24_000, "block_size": 64,
              "val_blocks": 4, "shard_documents": 1000, "tokenize_batch": 100, "num_proc": 1}
    for name in ("whole", "killed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "params.yaml").write_text(yaml.safe_dump({"model": str(tiny_gpt2), "corpus": corpus}))
    stage = [sys.executable, str(Path(__file__).resolve().parents[1] / "stages" / "chunk.py")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run(stage, cwd=tmp_path / "whole", env=env, check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(stage, cwd=killed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not chunking.finished_shards(killed / "checkpoints" / "chunk") and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL and not (killed / "data" / "blocks").exists()
    done = len(chunking.finished_shards(killed / "checkpoints" / "chunk"))
    assert 1 <= done < 24
    subprocess.run(stage, cwd=killed, env=env, check=True, capture_output=True)
    for name in ("train.npy", "val.npy", "manifest.json"):
        assert (killed / "data" / "blocks" / name).read_bytes() == (tmp_path / "whole" / "data" / "blocks" / name
                                                                     ).read_bytes(), name
