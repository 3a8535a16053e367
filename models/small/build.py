#!/usr/bin/env python3
"""Build the small offline GPT-2-architecture model shipped in ``src/acd/data/models/small``.

Stages (each skips itself when its output already exists; ``train`` resumes from
its checkpoint):

    corpus     apt-get download python3.11-doc, extract, strip reST markup, split
               into documents, hold out ~2% of documents for validation
    tokenizer  byte-level BPE, vocab 8192, ``<|endoftext|>`` = id 0
    train      GPT2LMHeadModel from scratch, plain PyTorch loop, resumable
    export     fp16 safetensors + config + tokenizer + manifest.json
    all        the four stages in order
    probe      ~30 s timing run (tokens/s) used to size ``--steps`` to the machine

Everything intermediate lives in ``models/small/work/`` (git-ignored).
Run with the project's virtualenv:  ``python models/small/build.py all``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = HERE / "work"
EXPORT_DIR = ROOT / "src" / "acd" / "data" / "models" / "small"

# ---- sources -------------------------------------------------------------------
SOURCES = [
    {
        "package": "python3.11-doc",
        "debian_release": "bookworm (Debian 12)",
        "licence": "PSF License Version 2 (Python Software Foundation License); "
        "see /usr/share/doc/python3.11-doc/copyright in the package",
        "files": "usr/share/doc/python3.11/html/_sources/**/*.rst.txt",
    }
]

# ---- hyperparameters (recorded in manifest.json) ---------------------------------
SEED = 1234
VOCAB_SIZE = 8192
EOT = "<|endoftext|>"
VAL_PERCENT = 2  # documents whose sha256(id) % 100 < VAL_PERCENT go to validation
MODEL = dict(
    vocab_size=VOCAB_SIZE,
    n_positions=512,
    n_embd=256,
    n_layer=8,
    n_head=8,
    # 3*d instead of GPT-2's 4*d: with 4*d the fp16 weights alone are 17.1 MB,
    # over the 16 MB budget for the shipped package data; 3*d gives ~15.0 MB.
    n_inner=768,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    tie_word_embeddings=True,
)
TRAIN = dict(
    block_size=256,
    batch_size=16,
    lr=1e-3,
    min_lr_ratio=0.1,
    warmup_steps=20,
    weight_decay=0.1,
    betas=(0.9, 0.95),
    grad_clip=1.0,
    eval_every=50,
    eval_blocks=32,  # validation blocks used for the periodic (not the final) val loss
    ckpt_every=50,
    num_threads=2,
)
DEFAULT_STEPS = 750  # probe on the 2-core box: ~1100-1360 tokens/s -> 750 x 4096 tokens in ~40-47 min
EXPORT_LIMIT_BYTES = 16_000_000


# ---- small utilities ---------------------------------------------------------------
def log(msg: str) -> None:
    """Timestamped line; via tqdm.write so it does not get glued onto a live progress bar."""
    from tqdm import tqdm

    tqdm.write(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stdout)
    sys.stdout.flush()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory + os.replace, so a crash never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are shipped/shared files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


# ---- stage 1: corpus ------------------------------------------------------------------
ROLE_RE = re.compile(r":[\w:.+-]+:`([^`]*)`")  # :func:`os.path.join`, :ref:`title <label>`
LITERAL_RE = re.compile(r"``([^`]+)``")
LINK_RE = re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}")  # `text <url>`_
INTERP_RE = re.compile(r"`([^`]+)`_{0,2}")
HEADING_RE = re.compile(r"^([=\-~^*#+\"'`.:_])\1{2,}\s*$")
DROP_BLOCK_DIRECTIVES = {
    "index", "toctree", "highlight", "sectionauthor", "moduleauthor", "module",
    "currentmodule", "testsetup", "testcleanup", "raw", "only", "include",
    "literalinclude", "image", "figure", "csv-table", "productionlist", "tabularcolumns",
    "audit-event", "audit-event-table", "opcode", "impl-detail", "c:namespace",
    "program", "pdbcommand", "availability",
}
DIRECTIVE_RE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
COMMENT_RE = re.compile(r"^\s*\.\.( |$)")  # not "..." (doctest continuation)


def _role_text(m: re.Match[str]) -> str:
    text = m.group(1)
    if "<" in text and text.endswith(">"):
        text = text[: text.index("<")].strip()
    return text.lstrip("!~")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def strip_rest(text: str) -> str:
    """Lightly de-markup reST: keep prose and ``::`` code, drop labels/index/toctree blocks."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        m = DIRECTIVE_RE.match(line)
        is_comment = not m and COMMENT_RE.match(line) is not None  # ".. _label:" or a comment
        if m or is_comment:
            base = _indent(line)
            drop_body = is_comment or m.group(2) in DROP_BLOCK_DIRECTIVES
            i += 1
            if drop_body:  # skip the whole indented body
                while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                    i += 1
                continue
            if m.group(3):  # ".. function:: join(path, *paths)" -> keep the signature as a line
                out.append(" " * base + m.group(3))
            # skip directive options (":noindex:"); the body itself goes through this loop again
            while i < len(lines) and re.match(r"^\s*:[\w-]+:( |$)", lines[i]) and _indent(lines[i]) > base:
                i += 1
            continue
        if HEADING_RE.match(line):
            i += 1
            continue
        out.append(line)
        i += 1
    s = "\n".join(out)
    s = ROLE_RE.sub(_role_text, s)
    s = LITERAL_RE.sub(r"\1", s)
    s = LINK_RE.sub(r"\1", s)
    s = INTERP_RE.sub(r"\1", s)
    s = re.sub(r"\|(\w+)\|", r"\1", s)  # |version| substitutions
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


def split_sections(raw: str) -> list[str]:
    """Split an .rst file at section titles (a text line followed by an underline)."""
    lines = raw.splitlines()
    starts = [0]
    for j in range(1, len(lines)):
        if HEADING_RE.match(lines[j]) and lines[j - 1].strip() and not HEADING_RE.match(lines[j - 1]):
            k = j - 1
            if k >= 1 and HEADING_RE.match(lines[k - 1]):  # overlined title
                k -= 1
            if k > starts[-1]:
                starts.append(k)
    starts.append(len(lines))
    return ["\n".join(lines[a:b]) for a, b in zip(starts, starts[1:])]


def find_deb(pkg: str) -> Path | None:
    debs = sorted(WORK.glob(f"{pkg}_*.deb"))
    return debs[-1] if debs else None


def stage_corpus(args: argparse.Namespace) -> None:
    corpus = WORK / "corpus.jsonl"
    if corpus.exists() and not args.force:
        log(f"corpus: {corpus} exists, skipping")
        return
    WORK.mkdir(parents=True, exist_ok=True)
    src = SOURCES[0]
    deb = find_deb(src["package"])
    if deb is None:
        log(f"corpus: apt-get download {src['package']}")
        subprocess.run(["apt-get", "download", src["package"]], cwd=WORK, check=True)
        deb = find_deb(src["package"])
        assert deb is not None
    extract = WORK / "extract"
    if not extract.exists():
        tmp = WORK / "extract.tmp"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        os.replace(tmp, extract)
    base = extract / "usr/share/doc/python3.11/html/_sources"
    files = sorted(base.rglob("*.rst.txt"))
    docs: list[dict[str, str]] = []
    for path in files:
        rel = path.relative_to(base).as_posix()
        for n, section in enumerate(split_sections(path.read_text(encoding="utf-8"))):
            text = strip_rest(section)
            if len(text) < 200:  # bare titles, labels, tiny stubs
                continue
            doc_id = f"{rel}#{n}"
            h = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16)
            split = "val" if h % 100 < VAL_PERCENT else "train"
            docs.append({"id": doc_id, "split": split, "text": text})
    data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode()
    atomic_write_bytes(corpus, data)
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    info = {
        "sources": [{**src, "version": version, "deb_file": deb.name, "deb_sha256": sha256_file(deb),
                     "rst_files": len(files)}],
        "corpus_file": corpus.name,
        "corpus_sha256": sha256_file(corpus),
        "corpus_bytes": len(data),
        "documents": {s: sum(d["split"] == s for d in docs) for s in ("train", "val")},
        "characters": {s: sum(len(d["text"]) for d in docs if d["split"] == s) for s in ("train", "val")},
    }
    atomic_write_json(WORK / "corpus_info.json", info)
    log(f"corpus: {len(docs)} documents from {len(files)} files, {len(data)/1e6:.1f} MB -> {corpus}")


def iter_docs(split: str) -> Iterator[str]:
    with open(WORK / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["split"] == split:
                yield d["text"]


# ---- stage 2: tokenizer -----------------------------------------------------------------
def stage_tokenizer(args: argparse.Namespace) -> None:
    import numpy as np
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    tok_dir = WORK / "tokenizer"
    if (WORK / "val.bin").exists() and (WORK / "tokens_info.json").exists() and not args.force:
        log("tokenizer: exists, skipping")
        return
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    # the BPE merges are learned on the training split only
    bpe.train_from_iterator(iter_docs("train"), vocab_size=VOCAB_SIZE, min_frequency=2,
                            special_tokens=[EOT], show_progress=False)
    assert bpe.token_to_id(EOT) == 0
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOT, eos_token=EOT,
                                   unk_token=EOT, model_max_length=MODEL["n_positions"])
    tmp = WORK / "tokenizer.tmp"
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    fast.save_pretrained(tmp)
    subprocess.run(["rm", "-rf", str(tok_dir)], check=True)
    os.replace(tmp, tok_dir)
    counts = {}
    for split in ("train", "val"):  # val.bin last: its existence marks the stage as done
        ids: list[int] = []
        for enc in bpe.encode_batch(list(iter_docs(split))):
            ids.extend(enc.ids)
            ids.append(0)  # <|endoftext|> after every document
        arr = np.asarray(ids, dtype=np.uint16)
        counts[split] = int(arr.size)
        atomic_write_bytes(WORK / f"{split}.bin", arr.tobytes())
    atomic_write_json(WORK / "tokens_info.json", {"tokens": counts, "eot_id": 0})
    log(f"tokenizer: vocab {bpe.get_vocab_size()}, tokens train={counts['train']} val={counts['val']}")


# ---- stage 3: train -------------------------------------------------------------------------
def load_tokens(split: str):  # -> torch.Tensor
    import numpy as np
    import torch

    arr = np.fromfile(WORK / f"{split}.bin", dtype=np.uint16).astype(np.int64)
    return torch.from_numpy(arr)


def make_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(**MODEL, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return GPT2LMHeadModel(cfg)


def lr_at(step: int, total: int) -> float:
    """Linear warmup then cosine decay to min_lr_ratio * lr."""
    lr, warm = TRAIN["lr"], TRAIN["warmup_steps"]
    if step < warm:
        return lr * (step + 1) / warm
    frac = min(1.0, (step - warm) / max(1, total - warm))
    return lr * (TRAIN["min_lr_ratio"] + (1 - TRAIN["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * frac)))


class BlockSampler:
    """Deterministic data order: epoch e visits all non-overlapping blocks in a permutation seeded
    by (SEED, e).  Batch contents depend only on the step number, so resuming needs no iterator state."""

    def __init__(self, tokens, block: int, batch: int) -> None:
        import torch

        self.block, self.batch = block, batch
        self.n_blocks = tokens.numel() // block
        self.blocks = tokens[: self.n_blocks * block].view(self.n_blocks, block)
        self.per_epoch = self.n_blocks // batch
        self._perm_epoch, self._perm = -1, torch.arange(0)

    def get(self, step: int):
        import torch

        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(SEED * 1000 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n_blocks, generator=g), epoch
        return self.blocks[self._perm[i * self.batch:(i + 1) * self.batch]], epoch


def evaluate(model, val, n_blocks: int | None) -> float:
    import torch

    block = TRAIN["block_size"]
    blocks = val[: (val.numel() // block) * block].view(-1, block)
    if n_blocks is not None:
        blocks = blocks[:n_blocks]
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in blocks.split(TRAIN["batch_size"]):
            out = model(input_ids=b, labels=b)
            n = b.numel() - b.size(0)
            total += out.loss.item() * n
            count += n
    model.train()
    return total / count


def make_optimizer(model):
    import torch

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": TRAIN["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=TRAIN["lr"], betas=TRAIN["betas"], fused=False, foreach=True,
    )


def save_checkpoint(path: Path, state: dict) -> None:
    import torch

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stage_train(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    torch.set_num_threads(TRAIN["num_threads"])
    total_steps: int = args.steps
    ckpt_path = WORK / "ckpt.pt"
    final_path = WORK / "final.json"
    if final_path.exists() and not args.force:
        log("train: final.json exists, skipping")
        return
    random.seed(SEED)
    torch.manual_seed(SEED)
    model = make_model()
    opt = make_optimizer(model)
    train, val = load_tokens("train"), load_tokens("val")
    sampler = BlockSampler(train, TRAIN["block_size"], TRAIN["batch_size"])
    step, history, elapsed_before = 0, [], 0.0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["total_steps"] != total_steps:
            sys.exit(f"checkpoint was made for --steps {ck['total_steps']}, not {total_steps}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, history, elapsed_before = ck["step"], ck["history"], ck["elapsed_s"]
        torch.set_rng_state(ck["torch_rng"])
        random.setstate(ck["py_rng"])
        log(f"train: resumed from step {step}")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"train: {n_params/1e6:.2f}M params, {train.numel()} train tokens "
        f"({sampler.per_epoch} steps/epoch), {total_steps} steps x "
        f"{TRAIN['batch_size']*TRAIN['block_size']} tokens")
    model.train()
    t0 = time.time()
    recent: list[float] = [h["loss"] for h in history if "loss" in h][-50:]
    bar = tqdm(total=total_steps, initial=step, mininterval=5, dynamic_ncols=False, ncols=100,
               file=sys.stderr)
    while step < total_steps:
        x, epoch = sampler.get(step)
        lr = lr_at(step, total_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        step += 1
        lv = loss.item()
        recent = (recent + [lv])[-50:]
        rec: dict = {"step": step, "loss": round(lv, 4), "lr": lr, "epoch": epoch}
        bar.set_postfix(loss=f"{sum(recent)/len(recent):.3f}", lr=f"{lr:.1e}", ep=epoch, refresh=False)
        bar.update(1)
        if step % TRAIN["eval_every"] == 0 or step == total_steps:
            rec["val_loss"] = round(evaluate(model, val, TRAIN["eval_blocks"]), 4)
            el = elapsed_before + time.time() - t0
            log(f"step {step}/{total_steps} train_loss(avg50) {sum(recent)/len(recent):.4f} "
                f"val_loss {rec['val_loss']:.4f} lr {lr:.2e} elapsed {el/60:.1f} min "
                f"({step*TRAIN['batch_size']*TRAIN['block_size']/max(el,1e-9):.0f} tok/s)")
        elif step % 25 == 0:
            log(f"step {step}/{total_steps} loss {lv:.4f} avg50 {sum(recent)/len(recent):.4f}")
        history.append(rec)
        if step % TRAIN["ckpt_every"] == 0 or step == total_steps:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "total_steps": total_steps, "history": history,
                "elapsed_s": elapsed_before + time.time() - t0,
                "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
            })
    bar.close()
    elapsed = (ck_elapsed := elapsed_before + time.time() - t0)
    val_loss = evaluate(model, val, None)  # full validation split
    final = {
        "steps": total_steps,
        "tokens_seen": total_steps * TRAIN["batch_size"] * TRAIN["block_size"],
        "epochs": round(total_steps / sampler.per_epoch, 3),
        "final_train_loss_avg_last50": round(sum(recent) / len(recent), 4),
        "final_val_loss": round(val_loss, 4),
        "final_val_ppl": round(math.exp(val_loss), 2),
        "train_wall_time_s": round(ck_elapsed, 1),
        "n_params": n_params,
        "history": history,
    }
    atomic_write_json(final_path, final)
    log(f"train: done, val_loss {val_loss:.4f} (ppl {math.exp(val_loss):.1f}), {elapsed/60:.1f} min")


# ---- timing probe ---------------------------------------------------------------------------------
def stage_probe(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(TRAIN["num_threads"])
    torch.manual_seed(SEED)
    model = make_model()
    opt = make_optimizer(model)
    sampler = BlockSampler(load_tokens("train"), TRAIN["block_size"], TRAIN["batch_size"])
    tok_per_step = TRAIN["batch_size"] * TRAIN["block_size"]
    t_start, n, t_first = time.time(), 0, None
    while time.time() - t_start < args.seconds:
        x, _ = sampler.get(n)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += 1
        if n == 1:
            t_first = time.time()  # skip the warm-up step in the rate
    dt = time.time() - (t_first or t_start)
    rate = (n - 1) * tok_per_step / dt if n > 1 else tok_per_step / (time.time() - t_start)
    budget_s = args.budget_min * 60
    # ~4% of time goes to periodic evals and checkpoints
    steps = int(rate * budget_s * 0.96 / tok_per_step)
    log(f"probe: {n} steps in {time.time()-t_start:.1f}s, {rate:.0f} tokens/s, "
        f"{tok_per_step/rate:.2f} s/step -> {steps} steps ({steps*tok_per_step/1e6:.2f}M tokens) "
        f"fit in {args.budget_min} min")


# ---- stage 4: export --------------------------------------------------------------------------------
def stage_export(args: argparse.Namespace) -> None:
    import numpy as np  # noqa: F401 - version recorded below
    import tokenizers
    import torch
    import transformers
    from transformers import GenerationConfig

    final = json.loads((WORK / "final.json").read_text())
    ck = torch.load(WORK / "ckpt.pt", weights_only=False)
    model = make_model()
    model.load_state_dict(ck["model"])
    model = model.half().eval()
    EXPORT_DIR.parent.mkdir(parents=True, exist_ok=True)
    tmp = EXPORT_DIR.parent / ".small.tmp"
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    model.save_pretrained(tmp, safe_serialization=True)
    # Stored in fp16 for size, loaded in float32: fp16 matmuls are slow and lossy on a CPU, and the frozen
    # model must match the float32 exit heads trained on it.
    config = json.loads((tmp / "config.json").read_text())
    atomic_write_json(tmp / "config.json", {**config, "dtype": "float32"})
    GenerationConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, do_sample=False).save_pretrained(tmp)
    # tokenizer.json as trained, plus a hand-written tokenizer_config.json: save_pretrained would
    # record load-time flags (is_local, local_files_only) and a transformers-5-only class name
    shutil.copyfile(WORK / "tokenizer" / "tokenizer.json", tmp / "tokenizer.json")
    atomic_write_json(tmp / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOT, "eos_token": EOT,
        "unk_token": EOT, "model_max_length": MODEL["n_positions"], "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
    })
    corpus_info = json.loads((WORK / "corpus_info.json").read_text())
    tokens_info = json.loads((WORK / "tokens_info.json").read_text())
    manifest = {
        "name": "acd-small",
        "description": "GPT-2-architecture LM trained from scratch on Python documentation prose; "
                       "for trying the acd pipeline offline only",
        "recipe": "models/small/build.py",
        "sources": corpus_info["sources"],
        "corpus": {k: corpus_info[k] for k in ("corpus_file", "corpus_sha256", "corpus_bytes",
                                               "documents", "characters")},
        "tokens": tokens_info["tokens"],
        "tokenizer": {"type": "byte-level BPE (tokenizers)", "vocab_size": VOCAB_SIZE,
                      "special_tokens": {EOT: 0}, "bos_eos_unk": EOT},
        "model": MODEL,
        "train": {**TRAIN, "betas": list(TRAIN["betas"]), "seed": SEED, "val_percent": VAL_PERCENT},
        "steps": final["steps"],
        "tokens_seen": final["tokens_seen"],
        "epochs": final["epochs"],
        "n_params": final["n_params"],
        "final_train_loss": final["final_train_loss_avg_last50"],
        "final_val_loss": final["final_val_loss"],
        "final_val_ppl": final["final_val_ppl"],
        "train_wall_time_s": final["train_wall_time_s"],
        "val_loss_curve": [(h["step"], h["val_loss"]) for h in final["history"] if "val_loss" in h],
        "export_dtype": "float16",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "machine": {"cpu_threads": TRAIN["num_threads"], "platform": platform.platform()},
    }
    files = {}
    for p in sorted(tmp.iterdir()):
        os.chmod(p, 0o644)
        files[p.name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    manifest["files"] = files
    total = sum(f["bytes"] for f in files.values())
    if total > EXPORT_LIMIT_BYTES:
        sys.exit(f"export is {total} bytes, over the {EXPORT_LIMIT_BYTES} byte budget")
    atomic_write_json(tmp / "manifest.json", manifest)
    subprocess.run(["rm", "-rf", str(EXPORT_DIR)], check=True)
    os.replace(tmp, EXPORT_DIR)
    atomic_write_json(HERE / "manifest.json", manifest)
    fill_readme(manifest)
    log(f"export: {total/1e6:.2f} MB -> {EXPORT_DIR}")
    verify(EXPORT_DIR)


def fill_readme(m: dict) -> None:
    """Rewrite the results block of README.md from the manifest, so the card never drifts from it."""
    readme = HERE / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        return
    rows = [
        ("steps x tokens/step", f"{m['steps']} x {m['train']['batch_size'] * m['train']['block_size']}"),
        ("tokens seen", f"{m['tokens_seen']:,} ({m['epochs']} epochs of the train split)"),
        ("final train loss (mean of last 50 steps)", f"{m['final_train_loss']:.4f}"),
        ("final validation loss (whole val split)", f"{m['final_val_loss']:.4f} (perplexity {m['final_val_ppl']})"),
        ("training wall time", f"{m['train_wall_time_s'] / 60:.1f} min on {m['machine']['cpu_threads']} CPU threads"),
        ("parameters", f"{m['n_params']:,}"),
        ("exported size", f"{sum(f['bytes'] for f in m['files'].values()) / 1e6:.2f} MB"),
        ("versions", f"torch {m['versions']['torch']}, transformers {m['versions']['transformers']}"),
    ]
    table = "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    curve = ", ".join(f"{s}: {v:.3f}" for s, v in m["val_loss_curve"])
    block = f"{start}\n{table}\nValidation loss by step: {curve}\n{end}"
    new = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    atomic_write_bytes(readme, new.encode())


def verify(path: Path) -> None:
    """Reload offline exactly as users will, and show a greedy continuation."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(path)
    model = GPT2LMHeadModel.from_pretrained(path).float().eval()
    for prompt in ("The Python interpreter", "A list is"):
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=tok.eos_token_id)
        log(f"verify: {tok.decode(out[0])!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["corpus", "tokenizer", "train", "export", "all", "probe", "verify"])
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    ap.add_argument("--seconds", type=float, default=30.0, help="probe duration")
    ap.add_argument("--budget-min", type=float, default=70.0, help="probe: wall-clock budget to size steps for")
    ap.add_argument("--force", action="store_true", help="redo a stage whose output exists")
    args = ap.parse_args()
    stages = {"corpus": stage_corpus, "tokenizer": stage_tokenizer, "train": stage_train,
              "export": stage_export, "probe": stage_probe}
    if args.stage == "all":
        for name in ("corpus", "tokenizer", "train", "export"):
            stages[name](args)
    elif args.stage == "verify":
        verify(EXPORT_DIR)
    else:
        stages[args.stage](args)


if __name__ == "__main__":
    main()
