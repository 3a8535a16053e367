"""Corpus -> fixed-length token blocks for head training (paper App. A).

English CC-100 holds one paragraph per row and a blank row between documents. As the authors do
(IBM/auto-contrastive-generation, ``head_training_utils.py``), each row's text is
tokenized as it is, line ending included (so the exit heads see newlines), and the rows are
concatenated with no EOS anywhere (blank rows are tokens too: a newline). The hub corpus, local
``.txt`` files (CC-100's own text format: one paragraph a line) and local ``.parquet`` files (a copy
of the hub's parquet conversion) are read this way. A local ``.jsonl`` file holds one whole document
per record instead: its text is kept as it is and followed by EOS, GPT-2's document separator,
because nothing else would separate its documents.

``n_documents`` counts CC-100 rows, blank ones included, as the paper's "20M instances" did (a blank
row is what separates two CC-100 documents), and jsonl records (blank records never count). The first
``n_documents`` of them are tokenized with the model's fast tokenizer, concatenated and cut into
``block_size`` token blocks: no padding, the remainder dropped. A corpus with fewer prints a warning;
the manifest records both counts (``n_documents`` asked, ``documents`` read). The first
``val_blocks`` blocks are held out for validation (they stay the same when ``n_documents`` grows).

Output directory: ``train.npy`` and ``val.npy`` (``[blocks, block_size]``, uint16 when the
vocabulary fits, else uint32; memory-mapped on load) and ``manifest.json``. Work is done in
shards of ``shard_documents`` documents kept in a work directory, so memory stays bounded and a
killed run resumes at the last finished shard; the output directory appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from acd.errors import OFFLINE_RUN, UsageError
from acd.io import atomic_dir, package_data, sha256_file, write_json
from acd.core.loading import load_config, load_tokenizer

BLOCKS_FORMAT = "acd-token-blocks"
BLOCKS_VERSION = 1
# How rows become tokens; a work directory of shards made another way is thrown away, never resumed.
# 2: rows as they are (line endings kept, blank rows included), no EOS in CC-100; n_documents counts rows.
TOKEN_STREAM_VERSION = 2
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val")
FILE_SUFFIXES = (".txt", ".jsonl", ".parquet")


@dataclass(frozen=True)
class CorpusParams:
    """params.yaml ``corpus``: where the documents come from and how they become blocks."""

    source: Literal["hub", "files"] = "hub"
    hub_id: str = "statmt/cc100"
    revision: str | None = "refs/convert/parquet"  # statmt/cc100's main revision is a loading script
    data_files: list[str] = field(default_factory=lambda: ["en/*/*.parquet"])
    split: str = "train"
    # .txt / .parquet: CC-100 rows (one paragraph a row, a blank row between documents); .jsonl: a document a record
    files: list[str] = field(default_factory=list)
    text_field: str = "text"
    n_documents: int = 20_000_000  # CC-100 rows, blank ones included (the paper's 20M instances); jsonl records
    block_size: int = 512
    val_blocks: int = 1000
    tokenize_batch: int = 1000  # documents per tokenizer call
    num_proc: int = 1  # tokenizer processes; 1 = in this process (the fast tokenizer still uses threads)
    shard_documents: int = 100_000  # documents per resumable work shard (bounds memory)

    def __post_init__(self) -> None:
        for name in ("n_documents", "block_size", "tokenize_batch", "num_proc", "shard_documents"):
            if getattr(self, name) < 1:
                raise UsageError(f"corpus.{name}={getattr(self, name)} is not allowed: it must be >= 1")
        if self.block_size < 2:
            raise UsageError(f"corpus.block_size={self.block_size} is not allowed: it must be >= 2 (input and target)")
        if self.val_blocks < 0:
            raise UsageError(f"corpus.val_blocks={self.val_blocks} is not allowed: it must be >= 0")
        if self.source == "files" and not self.files:
            raise UsageError("corpus.files=[] is not allowed with corpus.source: files: "
                             "list .txt/.jsonl/.parquet files")
        if self.source == "hub" and not self.data_files:
            raise UsageError("corpus.data_files=[] is not allowed with corpus.source: hub: name the parquet files")


# --- documents ---------------------------------------------------------------------------------


def resolve_file(name: str) -> Path:
    """A corpus file path; ``acd-data:sample/corpus.jsonl`` names a file shipped inside the package."""
    return Path(package_data(name))


def check_files(corpus: CorpusParams) -> list[Path]:
    paths = [resolve_file(name) for name in corpus.files]
    for name, path in zip(corpus.files, paths):
        if not path.is_file():
            raise UsageError(f"corpus.files: {name!r} does not exist (paths are relative to the project root)")
        if path.suffix not in FILE_SUFFIXES:
            raise UsageError(f"corpus.files: {name!r} is not allowed: use {', '.join(FILE_SUFFIXES)} files")
    return paths


def _text_rows(path: Path, text_field: str) -> Iterator[str]:
    """The rows of one local file; errors name the file and say what is wrong."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        if text_field not in parquet.schema_arrow.names:
            raise UsageError(f"corpus.text_field={text_field!r} is not a column of {str(path)!r}: "
                             f"columns are {', '.join(parquet.schema_arrow.names)}")
        for batch in parquet.iter_batches(columns=[text_field], batch_size=10_000):
            yield from (text or "" for text in batch.column(0).to_pylist())
        return
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UsageError(f"corpus.files: {str(path)!r} is not UTF-8 (line {number}, {error.reason}): "
                                 "convert it with iconv or drop it") from None
            if path.suffix == ".txt":
                yield line
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"corpus.files: {str(path)!r} line {number} is not JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise UsageError(f"corpus.text_field={text_field!r}: line {number} of {str(path)!r} "
                                 "has no such string field")
            yield record[text_field]


def _hub_rows(corpus: CorpusParams, skip: int) -> Iterator[str]:
    """Stream the hub corpus (parquet files at ``revision``) without downloading all of it."""
    import datasets

    unreachable = (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError)
    hint = ("; offline, use local files: set corpus.source: files and corpus.files: [path.txt|.jsonl|.parquet, ...] "
            f"(e.g. acd-data:sample/corpus.jsonl), {OFFLINE_RUN}")
    try:
        stream = datasets.load_dataset(corpus.hub_id, revision=corpus.revision, data_files=corpus.data_files,
                                       split=corpus.split, streaming=True)
        if stream.column_names is not None and corpus.text_field not in stream.column_names:
            raise UsageError(f"corpus.text_field={corpus.text_field!r} is not a column of {corpus.hub_id}: "
                             f"columns are {', '.join(stream.column_names)}")
        stream = stream.select_columns([corpus.text_field])
        for row in stream.skip(skip) if skip else stream:
            yield row[corpus.text_field] or ""
    except unreachable as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"corpus.hub_id={corpus.hub_id!r} cannot be read ({first}){hint}") from None


def corpus_rows(corpus: CorpusParams, skip: int = 0) -> Iterator[str]:
    """Every row of the corpus in order (blank ones too, so a resume can count them), after ``skip``."""
    return (text for text, _, _ in _tagged_rows(corpus, skip))


@dataclass(frozen=True)
class Document:
    """One document: its rows' texts as they are (tokenized one by one and concatenated), and whether EOS follows."""

    rows: tuple[str, ...]
    eos: bool = False  # True for a whole-document record of a .jsonl file; CC-100 rows get none (the authors')


def _tagged_rows(corpus: CorpusParams, skip: int) -> Iterator[tuple[str, bool, int]]:
    """``(text, is_record, source)`` for every row after ``skip``: records are .jsonl documents; a source is a file."""
    if corpus.source == "hub":
        return ((row, False, 0) for row in _hub_rows(corpus, skip))
    rows = itertools.chain.from_iterable(
        ((row, path.suffix == ".jsonl", index) for row in _text_rows(path, corpus.text_field))
        for index, path in enumerate(check_files(corpus))
    )
    return itertools.islice(rows, skip, None)


def group_documents(rows: Iterable[tuple[str, bool, int]]) -> Iterator[tuple[Document, int]]:
    """``(document, rows read up to it)`` in order, from :func:`_tagged_rows`' rows.

    Every CC-100 row is one unit, blank rows included: the authors counted rows (the paper's "20M
    instances") and kept the blank rows that separate documents. A jsonl record is a whole document,
    followed by EOS; a blank record holds none. The count of rows read lets a resume skip exactly those done.
    """
    read = 0
    for text, record, _ in rows:
        read += 1
        if not record:
            yield Document((text,)), read
        elif text.strip():
            yield Document((text,), eos=True), read


# --- tokens ------------------------------------------------------------------------------------


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """sha256 of the vocabulary and EOS: blocks made with one tokenizer are refused by a model of another."""
    payload = json.dumps([sorted(tokenizer.get_vocab().items()), tokenizer.eos_token_id])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_WORKER_TOKENIZER: PreTrainedTokenizerBase | None = None


def _init_worker(tokenizer: PreTrainedTokenizerBase) -> None:
    global _WORKER_TOKENIZER
    # A forked child must not touch the parent's Rust thread pool (it can deadlock); the
    # workers are the parallelism here, so each tokenizes on its own thread.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER_TOKENIZER = tokenizer


def encode_documents(documents: list[Document], tokenizer: PreTrainedTokenizerBase | None = None) -> np.ndarray:
    """One flat token array: every row's tokens (each row tokenized on its own, as it is), EOS after jsonl documents."""
    tokenizer = tokenizer or _WORKER_TOKENIZER
    assert tokenizer is not None
    texts = [text for document in documents for text in document.rows]
    ids = iter(tokenizer(texts, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"])
    eos = [tokenizer.eos_token_id]
    pieces = []
    for document in documents:
        pieces.extend(itertools.islice(ids, len(document.rows)))
        if document.eos:
            pieces.append(eos)
    total = sum(len(piece) for piece in pieces)
    return np.fromiter(itertools.chain.from_iterable(pieces), dtype=np.int64, count=total)


class Tokenize:
    """Tokenize batches of documents, in order, in this process or in a pool of ``num_proc`` workers."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, num_proc: int) -> None:
        self.tokenizer = tokenizer
        self.pool = None
        if num_proc > 1:
            # fork: workers start in milliseconds and inherit the tokenizer; they never touch torch.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = multiprocessing.get_context(method).Pool(num_proc, initializer=_init_worker,
                                                                 initargs=(tokenizer,))

    def __call__(self, batches: list[list[Document]]) -> list[np.ndarray]:
        if self.pool is None:
            return [encode_documents(batch, self.tokenizer) for batch in batches]
        return self.pool.map(encode_documents, batches, chunksize=1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


# --- shards (resumable work) -------------------------------------------------------------------


@dataclass
class Shard:
    index: int
    documents: int
    rows: int  # corpus rows read up to the end of this shard's last document, blank ones included
    tokens: int
    texts: int = 0  # documents that are not blank


def _shard_paths(work: Path, index: int) -> tuple[Path, Path]:
    return work / f"shard_{index:05d}.npy", work / f"shard_{index:05d}.json"


def finished_shards(work: Path) -> list[Shard]:
    """Shards whose JSON exists (it is written after the tokens), consecutive from 0."""
    shards = []
    while True:
        tokens, meta = _shard_paths(work, len(shards))
        if not (meta.is_file() and tokens.is_file()):
            return shards
        shards.append(Shard(**json.loads(meta.read_text(encoding="utf-8"))))


def _write_shard(work: Path, shard: Shard, tokens: np.ndarray, dtype: np.dtype) -> None:
    tokens_path, meta_path = _shard_paths(work, shard.index)
    tmp = tokens_path.with_suffix(".tmp.npy")
    np.save(tmp, tokens.astype(dtype))
    os.replace(tmp, tokens_path)
    write_json(meta_path, asdict(shard))


def _work_spec(corpus: CorpusParams, tokenizer_name: str, fingerprint: str) -> dict[str, Any]:
    """What shards depend on; a work directory made under another spec is thrown away."""
    spec: dict[str, Any] = {"corpus": asdict(corpus), "tokenizer": tokenizer_name, "tokenizer_sha256": fingerprint,
                            "token_stream": TOKEN_STREAM_VERSION}
    for key in ("num_proc", "tokenize_batch", "val_blocks", "block_size"):
        spec["corpus"].pop(key)  # these do not change the token stream
    if corpus.source == "files":
        spec["file_stats"] = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in check_files(corpus)]
    return spec


def _open_work(work: Path, spec: dict[str, Any]) -> list[Shard]:
    spec_path = work / "spec.json"
    if work.is_dir() and spec_path.is_file() and json.loads(spec_path.read_text(encoding="utf-8")) == spec:
        return finished_shards(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_json(spec_path, spec)
    return []


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def tokenize_corpus(
    corpus: CorpusParams, tokenizer: PreTrainedTokenizerBase, tokenizer_name: str, work: Path
) -> list[Shard]:
    """Tokenize the first ``n_documents`` documents into shards under ``work``, resuming finished ones."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    dtype = token_dtype(len(tokenizer))
    shards = _open_work(work, _work_spec(corpus, tokenizer_name, fingerprint))
    documents = sum(shard.documents for shard in shards)
    rows = shards[-1].rows if shards else 0
    if shards and (documents >= corpus.n_documents or shards[-1].documents < corpus.shard_documents):
        return shards  # finished before: the corpus ran out or n_documents was reached
    tokenize = Tokenize(tokenizer, corpus.num_proc)
    progress: tqdm | None = None  # shown once the first documents are read, so bad input stays one line
    started, new_tokens = time.perf_counter(), 0
    try:
        stream = group_documents(_tagged_rows(corpus, skip=rows))
        start = rows
        while documents < corpus.n_documents:
            wanted = min(corpus.shard_documents, corpus.n_documents - documents)
            texts: list[Document] = []
            for document, read in stream:
                texts.append(document)
                rows = start + read
                if len(texts) == wanted:
                    break
            if not texts:
                break
            if progress is None:
                progress = tqdm(total=corpus.n_documents, initial=documents, unit="doc", desc="chunk",
                                dynamic_ncols=True)
            pieces = []
            for group in _batched(_batched(texts, corpus.tokenize_batch), 4 * corpus.num_proc):
                pieces.extend(piece.astype(dtype) for piece in tokenize(group))
                done = sum(len(batch) for batch in group)
                progress.update(done)
                new_tokens += sum(len(piece) for piece in pieces[-len(group):])
                progress.set_postfix(tok_s=f"{new_tokens / (time.perf_counter() - started):,.0f}")
            tokens = np.concatenate(pieces)
            shard = Shard(index=len(shards), documents=len(texts), rows=rows, tokens=len(tokens),
                          texts=sum(1 for document in texts if any(row.strip() for row in document.rows)))
            _write_shard(work, shard, tokens, dtype)
            shards.append(shard)
            documents += len(texts)
            if len(texts) < wanted:
                break  # the corpus ran out
    finally:
        if progress is not None:
            progress.close()
        tokenize.close()
    return shards


# --- blocks ------------------------------------------------------------------------------------


def iter_blocks(work: Path, shards: list[Shard], block_size: int, rows_at_once: int = 4096) -> Iterator[np.ndarray]:
    """The concatenated shard tokens as ``[k, block_size]`` arrays; the remainder is dropped."""
    carry = np.zeros(0, dtype=np.int64)
    for shard in shards:
        tokens = np.load(_shard_paths(work, shard.index)[0], mmap_mode="r")
        for start in range(0, len(tokens), rows_at_once * block_size):
            stream = np.concatenate([carry, tokens[start:start + rows_at_once * block_size]])
            usable = len(stream) // block_size * block_size
            if usable:
                yield stream[:usable].reshape(-1, block_size)
            carry = stream[usable:]


def write_blocks(
    work: Path, shards: list[Shard], out: Path, block_size: int, val_blocks: int, dtype: np.dtype
) -> dict[str, int]:
    """Fill ``out/val.npy`` with the first ``val_blocks`` blocks and ``out/train.npy`` with the rest."""
    n_blocks = sum(shard.tokens for shard in shards) // block_size
    arrays = {
        "val": np.lib.format.open_memmap(out / "val.npy", mode="w+", dtype=dtype, shape=(val_blocks, block_size)),
        "train": np.lib.format.open_memmap(out / "train.npy", mode="w+", dtype=dtype,
                                           shape=(n_blocks - val_blocks, block_size)),
    }
    position = 0
    for blocks in iter_blocks(work, shards, block_size):
        for split, offset in (("val", 0), ("train", val_blocks)):
            lo, hi = max(position, offset), min(position + len(blocks), offset + len(arrays[split]))
            if lo < hi:
                arrays[split][lo - offset:hi - offset] = blocks[lo - position:hi - position]
        position += len(blocks)
    for array in arrays.values():
        array.flush()
    del arrays
    return {"train": n_blocks - val_blocks, "val": val_blocks}


def corpus_description(corpus: CorpusParams) -> dict[str, Any]:
    if corpus.source == "hub":
        return {"source": "hub", "hub_id": corpus.hub_id, "revision": corpus.revision,
                "data_files": corpus.data_files, "split": corpus.split, "text_field": corpus.text_field}
    return {"source": "files", "text_field": corpus.text_field,
            "files": [{"name": name, "sha256": sha256_file(resolve_file(name))} for name in corpus.files]}


def check_block_size(block_size: int, model: str) -> None:
    context = getattr(load_config(model), "max_position_embeddings", None)
    if context is not None and block_size > context:
        raise UsageError(f"corpus.block_size={block_size} is not allowed: model={model!r} reads at most "
                         f"{context} positions")


def chunk_corpus(corpus: CorpusParams, model: str, out: str | os.PathLike[str],
                 work: str | os.PathLike[str]) -> dict[str, Any]:
    """Tokenize and cut the corpus into blocks under ``out`` (whole or not at all); return the manifest."""
    out, work = Path(out), Path(work)
    check_block_size(corpus.block_size, model)
    if corpus.source == "files":
        check_files(corpus)
    tokenizer = load_tokenizer(model)
    jsonl = [name for name in corpus.files if resolve_file(name).suffix == ".jsonl"] if corpus.source == "files" else []
    if jsonl and tokenizer.eos_token_id is None:
        raise UsageError(f"model={model!r} has a tokenizer without an EOS token, which separates the documents of "
                         f"corpus.files={jsonl}: use .txt or .parquet files of CC-100-shaped rows")
    try:
        shards = tokenize_corpus(corpus, tokenizer, model, work)
    except UsageError:
        shutil.rmtree(work, ignore_errors=True)  # bad input: nothing half-made stays behind
        raise
    documents, tokens = sum(s.documents for s in shards), sum(s.tokens for s in shards)
    if not any(shard.texts for shard in shards):
        shutil.rmtree(work, ignore_errors=True)
        source = f"corpus.files={corpus.files}" if corpus.source == "files" else f"corpus.hub_id={corpus.hub_id!r}"
        raise UsageError(f"{source} holds no documents (every row is blank): give a corpus with text in it")
    if documents < corpus.n_documents:
        print(f"warning: the corpus holds {documents} documents, fewer than corpus.n_documents="
              f"{corpus.n_documents}: all of them are used (manifest.json records both counts)", file=sys.stderr)
    n_blocks = tokens // corpus.block_size
    if n_blocks <= corpus.val_blocks:
        shutil.rmtree(work, ignore_errors=True)
        raise UsageError(
            f"corpus.n_documents={corpus.n_documents} gave {documents} documents, {tokens} tokens, {n_blocks} "
            f"blocks of {corpus.block_size}: too few for corpus.val_blocks={corpus.val_blocks} plus training blocks; "
            "add documents or lower corpus.val_blocks"
        )
    dtype = token_dtype(len(tokenizer))
    with atomic_dir(out) as tmp:
        counts = write_blocks(work, shards, tmp, corpus.block_size, corpus.val_blocks, dtype)
        manifest = {
            "format": BLOCKS_FORMAT,
            "version": BLOCKS_VERSION,
            "tokenizer": model,
            "tokenizer_sha256": tokenizer_fingerprint(tokenizer),
            "vocab_size": len(tokenizer),
            "eos_token_id": tokenizer.eos_token_id,
            "dtype": dtype.name,
            "block_size": corpus.block_size,
            "n_documents": corpus.n_documents,
            "documents": documents,
            "tokens": tokens,
            "dropped_tokens": tokens - n_blocks * corpus.block_size,
            "blocks": counts,
            "corpus": corpus_description(corpus),
            "sha256": {f"{split}.npy": sha256_file(tmp / f"{split}.npy") for split in SPLITS},
        }
        write_json(tmp / MANIFEST_NAME, manifest)
    shutil.rmtree(work, ignore_errors=True)
    return manifest


# --- reading blocks back -------------------------------------------------------------------------


@dataclass
class Blocks:
    manifest: dict[str, Any]
    train: np.ndarray  # [train_blocks, block_size], memory-mapped
    val: np.ndarray


def load_blocks(directory: str | os.PathLike[str], verify: bool = True) -> Blocks:
    """Open a chunk output; ``verify`` checks each file against the manifest's sha256."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UsageError(f"blocks={str(directory)!r} has no {MANIFEST_NAME}: run the chunk stage first (acd chunk)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != BLOCKS_FORMAT or manifest.get("version") != BLOCKS_VERSION:
        raise UsageError(f"blocks={str(directory)!r} is not {BLOCKS_FORMAT!r} v{BLOCKS_VERSION}: rerun the chunk stage")
    if "skipped" in manifest:
        source = manifest["skipped"]["heads.source"]
        raise UsageError(f"blocks={str(directory)!r} holds no blocks: chunk skipped the corpus for "
                         f"heads.source={source!r}; set heads.source: train and rerun chunk")
    arrays = {}
    for split in SPLITS:
        path = directory / f"{split}.npy"
        if not path.is_file() or (verify and sha256_file(path) != manifest["sha256"][path.name]):
            raise UsageError(f"blocks={str(directory)!r}: {path.name} is missing or does not match {MANIFEST_NAME}; "
                             "rerun the chunk stage")
        arrays[split] = np.load(path, mmap_mode="r")
    return Blocks(manifest=manifest, train=arrays["train"], val=arrays["val"])


def check_tokenizer(blocks: Blocks, tokenizer: PreTrainedTokenizerBase, model: str) -> None:
    """Refuse blocks made with another tokenizer than ``model``'s."""
    if blocks.manifest["tokenizer_sha256"] != tokenizer_fingerprint(tokenizer):
        raise UsageError(
            f"model={model!r} does not fit the blocks: they were tokenized for {blocks.manifest['tokenizer']!r} "
            "with another vocabulary; rerun the chunk stage with this model"
        )


def chunk_benchmark(model: str, files: list[str], n_documents: int | None = None, num_proc: int = 1,
                    work_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One timed :func:`chunk_corpus` run on local files (read, tokenize, pack, write blocks), in a scratch directory.

    ``n_documents=None`` takes every document of the files (counted before the clock starts). Returns the
    tokens, documents and block size it made, and its wall seconds.
    """
    import tempfile

    corpus = CorpusParams(source="files", files=files, n_documents=n_documents or 1, val_blocks=0, num_proc=num_proc)
    if n_documents is None:
        every = sum(1 for _ in group_documents(_tagged_rows(corpus, 0)))
        corpus = CorpusParams(**{**asdict(corpus), "n_documents": every})
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        started = time.perf_counter()
        manifest = chunk_corpus(corpus, model, Path(tmp) / "blocks", Path(tmp) / "work")
        seconds = time.perf_counter() - started
    return {"tokens": manifest["tokens"], "documents": manifest["documents"], "block_size": manifest["block_size"],
            "seconds": seconds}


def run_from_params(params_file: str | os.PathLike[str] = "params.yaml", out: str = "data/blocks",
                    work: str = "checkpoints/chunk") -> dict[str, Any]:
    """The ``chunk`` stage: read params.yaml (``model``, ``corpus``, ``heads``), write ``out`` (shards in ``work``).

    With imported heads (``heads.source`` not ``train``) nothing trains on blocks: ``out`` holds only a
    manifest saying so, and the corpus is never read.
    """
    from acd.pipeline.heads_source import heads_params
    from acd.pipeline.params import ModelName, pick, read_params, section

    raw = read_params(params_file)
    corpus, model, heads = section(raw, "corpus", CorpusParams), pick(raw, ModelName).model, heads_params(raw)
    if heads.imported:
        return skip_blocks(out, heads.source)
    return chunk_corpus(corpus, model, out, work)


def skip_blocks(out: str | os.PathLike[str], source: str) -> dict[str, Any]:
    """The chunk output when heads are imported: a manifest with no blocks, which :func:`load_blocks` refuses."""
    manifest = {"format": BLOCKS_FORMAT, "version": BLOCKS_VERSION, "skipped": {"heads.source": source},
                "blocks": {split: 0 for split in SPLITS}}
    with atomic_dir(out) as tmp:
        write_json(tmp / MANIFEST_NAME, manifest)
    return manifest
