"""Every bad input the table in docs/reliability.md lists: what is wrong, how it is triggered, what the user sees.

This list is the single source of truth. ``tests/test_reliability.py`` runs each case through the real
entry point (a DVC stage script or the ``acd`` command) in a copy of one small project, asserts exit code 2,
exactly one stderr line ``error: <message>``, no traceback and every earlier output byte-identical, and
checks that docs/reliability.md holds exactly :func:`render_table`. After changing a message, edit it here and
run ``python tests/reliability_cases.py --write`` to rewrite the table there.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"  # the page holding the table
BEGIN = "<!-- reliability-table: begin (python tests/reliability_cases.py --write) -->"
END = "<!-- reliability-table: end -->"

# The project every case starts from (built by tests/test_reliability.py): a tiny 4-layer GPT-2 in
# models/base with exit heads on layers 2 and 4 in models/heads, chunked blocks, prompts, and earlier outputs.
BASE_PARAMS: dict[str, Any] = {
    "model": "models/base", "alpha": 0.1, "layer": 2, "expert": "new", "amateur": "head", "seed": 0,
    "corpus": {"source": "files", "files": ["acd-data:sample/corpus.jsonl"], "n_documents": 300, "block_size": 64,
               "val_blocks": 2},
    "train": {"exit_layers": [2, 4], "batch_size": 4, "micro_batch_size": 2, "epochs": 1, "max_steps": 2},
    "prompts": {"n_prompts": 2, "prompt_words": 32, "min_words": 64,
                "domains": {"wikitext": {"files": ["acd-data:sample/wikitext.jsonl"]}}},
    "generation": {"strategies": ["greedy"], "max_new_tokens": 4, "batch_size": 2, "dtype": "float32",
                   "layer_sweep_domains": ["wikitext"]},
    "benchmarks": {"tasks": {"lambada": ["lambada_local"]}, "heads": "models/heads", "limit": 2, "device": "cpu"},
}


def write_file(relative: str, data: bytes) -> Callable[[Path], None]:
    def prepare(project: Path) -> None:
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # the project is a hard-linked copy: replace files, never edit them
        path.write_bytes(data)

    return prepare


def truncate(relative: str, keep: int) -> Callable[[Path], None]:
    def prepare(project: Path) -> None:
        path = project / relative
        data = path.read_bytes()[:keep]
        path.unlink()
        path.write_bytes(data)

    return prepare


def remove(relative: str) -> Callable[[Path], None]:
    def prepare(project: Path) -> None:
        import shutil

        shutil.rmtree(project / relative)

    return prepare


def swap_heads(variant: str) -> Callable[[Path], None]:
    """Put the heads built for another model (``variants/<variant>``, made with the project) in models/heads."""

    def prepare(project: Path) -> None:
        import shutil

        shutil.rmtree(project / "models" / "heads")
        shutil.copytree(project / "variants" / variant, project / "models" / "heads")

    return prepare


@dataclass(frozen=True)
class Case:
    id: str
    wrong: str  # what is wrong, as the table says it
    command: tuple[str, ...]  # ("stages/x.py", args...) or ("acd", args...), run in the project directory
    message: str  # what follows "error: " on the one stderr line
    params: dict[str, Any] = field(default_factory=dict)  # dotted keys of params.yaml set for this case
    prepare: Callable[[Path], None] | None = None  # damages a file of the project first
    after_progress: bool = False  # found only once the work started: a progress bar may precede the error line

    def how(self) -> str:
        command = " ".join(part if re.fullmatch(r"[\w./=-]+", part) else repr(part) for part in self.command)
        command = command if self.command[0] == "acd" else f"python {command}"
        settings = ", ".join(f"{key}: {value!r}" for key, value in self.params.items())
        return f"`{command}`" + (f" with `{settings}`" if settings else "")


GENERATE_ACD = ("stages/generate.py", "acd", "greedy")
ACD_GENERATE = ("acd", "generate", "Hi", "--model", "models/base", "--heads", "models/heads")
CHUNK = ("stages/chunk.py",)

CASES: list[Case] = [
    Case("alpha-above-1", "`alpha` outside [0, 1]", GENERATE_ACD,
         "alpha=1.5 is not allowed: alpha must be a number in [0, 1]", params={"alpha": 1.5}),
    Case("alpha-negative-cli", "`--alpha` outside [0, 1]", (*ACD_GENERATE, "--alpha", "-0.1"),
         "alpha=-0.1 is not allowed: alpha must be a number in [0, 1]"),
    Case("alpha-not-a-number", "`alpha` not a number", GENERATE_ACD,
         "alpha='high' is not allowed: expected float", params={"alpha": "high"}),
    Case("alpha-not-a-number-cli", "`--alpha` not a number", (*ACD_GENERATE, "--alpha", "high"),
         "alpha='high' is not allowed: input should be a valid number, unable to parse string as a number"),
    Case("layer-zero", "`layer` <= 0", GENERATE_ACD,
         "layer=0 is out of range: use an exit layer >= 1 or 'dynamic'", params={"layer": 0}),
    Case("layer-above-model", "`layer` above the model's layers", GENERATE_ACD,
         "layer=9 is out of range: allowed 1..4 for this model (amateur)", params={"layer": 9}),
    Case("layer-above-model-cli", "`--layer` above the model's layers", (*ACD_GENERATE, "--layer", "9"),
         "layer=9 is out of range: allowed 1..4 for this model (amateur)"),
    Case("layer-without-head", "`layer` without a trained head, `amateur: head`", GENERATE_ACD,
         "layer=3 has no trained head for amateur='head' (trained exits are [2, 4]); train one, pick a trained "
         "layer, or use amateur='lens'", params={"layer": 3}),
    Case("strategy-unknown", "unknown decoding strategy", ("stages/generate.py", "acd", "nucleus"),
         "strategy='nucleus' is not allowed: use one of greedy, beam, top-k, top-p"),
    Case("strategies-unknown", "unknown strategy in `generation.strategies`", ("stages/generate.py", "plain", "greedy"),
         "generation.strategies: 'nucleus' is not allowed: use one of greedy, beam, top-k, top-p",
         params={"generation.strategies": ["greedy", "nucleus"]}),
    Case("domain-unknown", "unknown domain in `generation.layer_sweep_domains`", ("stages/generate.py", "layers"),
         "generation.layer_sweep_domains: no prompts at data/prompts/books.jsonl; domains must be in prompts.domains",
         params={"generation.layer_sweep_domains": ["books"]}),
    Case("task-unknown", "unknown lm-eval task",
         ("acd", "lm-eval", "--tasks", "lambada_locall", "--model-args", "pretrained=models/base",
          "--no-default-tasks"),
         "task='lambada_locall' is not a known lm-eval task: close matches are lambada_local, acd_local"),
    Case("group-unknown", "unknown benchmark group", ("stages/benchmark_layers.py", "squad"),
         "group='squad' is not in benchmarks.tasks: known groups are lambada"),
    Case("expert-unknown", "unknown `expert` kind", GENERATE_ACD,
         "expert='best' is not allowed: expected one of 'original', 'new'", params={"expert": "best"}),
    Case("amateur-unknown", "unknown `amateur` kind", GENERATE_ACD,
         "amateur='logit' is not allowed: expected one of 'head', 'lens', 'model'", params={"amateur": "logit"}),
    Case("amateur-unknown-cli", "unknown `--amateur` kind", (*ACD_GENERATE, "--amateur", "logit"),
         "amateur='logit' is not allowed: use one of head, lens, model"),
    Case("block-size-above-context", "`corpus.block_size` above the model's context", CHUNK,
         "corpus.block_size=2048 is not allowed: model='models/base' reads at most 1024 positions",
         params={"corpus.block_size": 2048}),
    Case("heads-missing", "`models/heads` missing (train_heads never ran)", GENERATE_ACD,
         "heads='models/heads' is not a local directory and cannot be reached on the hub (no connection, and not "
         "in the local cache); offline, point heads at a local directory (exit heads or a multi-exit checkpoint)",
         prepare=remove("models/heads")),
    Case("heads-truncated", "`models/heads/heads.safetensors` truncated", GENERATE_ACD,
         "heads='models/heads': heads.safetensors does not match the sha256 in heads.json (truncated or replaced); "
         "retrain or re-import the heads", prepare=truncate("models/heads/heads.safetensors", 1000)),
    Case("heads-other-model", "`models/heads` trained on another model (hidden size 16, 6 layers)", GENERATE_ACD,
         "heads='models/heads' do not fit this model: they were trained for 'models/other-model' (vocab 50257, "
         "hidden size 16, 6 layers); the model has vocab 50257, hidden size 32, 4 layers",
         prepare=swap_heads("other-model")),
    Case("heads-other-vocab", "`models/heads` of another vocabulary (1000 tokens)", GENERATE_ACD,
         "heads='models/heads' do not fit this model: they were trained for 'models/other-vocab' (vocab 1000, "
         "hidden size 32, 4 layers); the model has vocab 50257, hidden size 32, 4 layers",
         prepare=swap_heads("other-vocab")),
    Case("corpus-empty", "empty corpus (blank lines only)", CHUNK,
         "corpus.files=['data/empty.txt'] holds no documents (every row is blank): give a corpus with text in it",
         params={"corpus.files": ["data/empty.txt"]}, prepare=write_file("data/empty.txt", b"\n \n"),
         after_progress=True),  # blank rows are CC-100 rows too: they are read (and counted) before the check
    Case("corpus-not-utf8", "corpus not UTF-8 (Latin-1 line)", CHUNK,
         "corpus.files: 'data/latin1.txt' is not UTF-8 (line 2, invalid continuation byte): convert it with iconv "
         "or drop it",
         params={"corpus.files": ["data/latin1.txt"]},
         prepare=write_file("data/latin1.txt", b"fine\ncaf\xe9 au lait\n")),
    Case("corpus-too-small", "corpus too small (one short document)", CHUNK,
         "corpus.n_documents=300 gave 1 documents, 5 tokens, 0 blocks of 64: too few for corpus.val_blocks=2 plus "
         "training blocks; add documents or lower corpus.val_blocks", params={"corpus.files": ["data/short.txt"]},
         prepare=write_file("data/short.txt", b"A few words.\n"), after_progress=True),
    Case("prompts-malformed", "prompt jsonl with a torn line", GENERATE_ACD,
         "prompts='data/prompts/wikitext.jsonl': line 2 is not valid JSON (one object per line)",
         prepare=write_file("data/prompts/wikitext.jsonl", b'{"id": "w-1", "prompt": "The city"}\n{"id": "w-2", \n')),
    Case("prompts-no-field", "prompt jsonl without a `prompt` field", GENERATE_ACD,
         "prompts='data/prompts/wikitext.jsonl': line 1 needs string field(s) 'id', 'prompt'",
         prepare=write_file("data/prompts/wikitext.jsonl", b'{"id": "w-1", "text": "The city"}\n')),
    Case("prompt-source-malformed", "prompt source jsonl not JSON", ("stages/prompts.py",),
         "prompts.domains.wikitext.files='data/wiki.jsonl': line 1 is not valid JSON (one object per line)",
         params={"prompts.domains.wikitext.files": ["data/wiki.jsonl"]},
         prepare=write_file("data/wiki.jsonl", b"text\n")),
    Case("exit-layers-above-model", "`train.exit_layers` above the model's layers", ("stages/train_heads.py",),
         "train.exit_layers=[2, 9] is not allowed: layer 9 is outside 1..4 of model='models/base'",
         params={"train.exit_layers": [2, 9]}),
    Case("unknown-parameter", "misspelt parameter", ("stages/generate.py", "plain", "greedy"),
         "generation.max_new_token is not a known parameter: known are batch_size, dtype, layer_sweep_domains, "
         "max_new_tokens, strategies", params={"generation.max_new_token": 10}),
    Case("unknown-top-level-parameter", "misspelt top-level parameter", GENERATE_ACD,
         "alpah is not a known parameter: did you mean 'alpha'? known top-level keys are alpha, amateur, "
         "amateur_model, amateur_temperature, benchmarks, candidate_layers, corpus, expert, generation, "
         "generation_metrics, heads, keep_tail, layer, min_candidates, model, processes, prompts, seed, train",
         params={"alpah": 0.2}),
    Case("processes-zero", "`processes` below 1", GENERATE_ACD,
         "processes=0 is not allowed: the number of data-parallel processes, an integer >= 1",
         params={"processes": 0}),
    Case("params-not-yaml", "`params.yaml` not valid YAML", GENERATE_ACD,
         "params='params.yaml' is not valid YAML (while parsing a flow sequence)",
         prepare=write_file("params.yaml", b"model: models/base\nalpha: [0.1\n")),
]


def set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for name in parents:
        params = params.setdefault(name, {})
    params[last] = value


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped."""
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_table(cases: list[Case] = CASES) -> str:
    """The table of docs/reliability.md: one row per case, the message exactly as the test saw it."""
    rows = ["| what is wrong | how it was tried | what the user sees (stderr, exit code 2) |", "|---|---|---|"]
    rows += [f"| {_cell(case.wrong)} | {_cell(case.how())} | {_cell(_code('error: ' + case.message))} |"
             for case in cases]
    return "\n".join([BEGIN, *rows, END])


def page_table(text: str) -> str:
    """The table block between the markers in ``text`` ('' when there is none)."""
    match = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, flags=re.S)
    return match.group(0) if match else ""


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(render_table())
        return 0
    text = TABLE_PAGE.read_text(encoding="utf-8")
    old = page_table(text)
    if not old:
        print(f"{TABLE_PAGE}: no {BEGIN!r} ... {END!r} block to replace", file=sys.stderr)
        return 1
    TABLE_PAGE.write_text(text.replace(old, render_table()), encoding="utf-8")
    print(f"wrote the reliability table ({len(CASES)} cases) into {TABLE_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
