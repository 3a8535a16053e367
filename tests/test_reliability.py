"""Bad input, end to end: each case of reliability_cases.py through the real stage script or `acd` command.

One small project is built per session (tiny model, exit heads, blocks, prompts, earlier generations); each
case runs in a hard-linked copy of it, so a stage that wrote anything (or changed a file in place) is caught.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from reliability_cases import BASE_PARAMS, CASES, TABLE_PAGE, Case, page_table, render_table, set_dotted

ROOT = Path(__file__).resolve().parents[1]


def build_project(root: Path) -> Path:
    """The project every case starts from: what a finished run of chunk, train_heads, prompts, generate leaves."""
    from acd.pipeline.chunking import CorpusParams, chunk_corpus
    from acd.pipeline.generation import GenerationParams, generate_domains, read_prompt_sets
    from acd.core.heads import ExitHeads, HeadsConfig
    from acd.pipeline.jsonl import write_jsonl
    from acd.core.loading import load, load_pretrained
    from acd.pipeline.params import build
    from acd.pipeline.prompts import PromptsParams, build_prompts
    from acd.tools.tiny import make_tiny_model

    make_tiny_model(root / "models" / "base", n_layers=4, d_model=32)
    base, _ = load_pretrained(root / "models" / "base", device="cpu")
    ExitHeads.for_model(base, [2, 4], base_model="models/base").save(root / "models" / "heads")
    for variant, (vocab, hidden, layers) in {"other-model": (50257, 16, 6), "other-vocab": (1000, 32, 4)}.items():
        config = HeadsConfig(base_model=f"models/{variant}", exit_layers=[2, 4], vocab_size=vocab, hidden_size=hidden,
                             num_layers=layers)
        ExitHeads(config).save(root / "variants" / variant)
    (root / "params.yaml").write_text(yaml.safe_dump(BASE_PARAMS, sort_keys=False), encoding="utf-8")
    chunk_corpus(build(CorpusParams, BASE_PARAMS["corpus"]), str(root / "models" / "base"), root / "data" / "blocks",
                 root / "checkpoints" / "chunk")
    prompts = build(PromptsParams, BASE_PARAMS["prompts"])
    for domain, source in prompts.domains.items():
        write_jsonl(root / "data" / "prompts" / f"{domain}.jsonl", build_prompts(domain, source, prompts, 0))
    model, tokenizer = load(root / "models" / "base", heads=root / "models" / "heads", layer=2, device="cpu")
    generate_domains(model, tokenizer, read_prompt_sets(sorted((root / "data" / "prompts").glob("*.jsonl"))),
                     root / "data" / "generations" / "acd" / "greedy", root / "data" / "journal",
                     model_name="models/base", kind="acd", strategy="greedy",
                     params=build(GenerationParams, BASE_PARAMS["generation"]), seed=0)
    return root


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("reliability"))


def snapshot(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def command(case: Case) -> list[str]:
    if case.command[0] == "acd":
        return [sys.executable, "-m", "acd.tools.cli", *case.command[1:]]
    return [sys.executable, str(ROOT / case.command[0]), *case.command[1:]]


def prepared_copy(project: Path, case: Case, where: Path) -> Path:
    """A hard-linked copy of the project with the case's params and damage applied (files replaced, never edited)."""
    copy = where / "project"
    shutil.copytree(project, copy, copy_function=os.link)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for key, value in case.params.items():
        set_dotted(params, key, value)
    (copy / "params.yaml").unlink()
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    if case.prepare is not None:
        case.prepare(copy)
    return copy


@dataclass
class Outcome:
    result: subprocess.CompletedProcess[str]
    before: dict[str, str]
    after: dict[str, str]


def run_case(case: Case, project: Path, where: Path) -> Outcome:
    copy = prepared_copy(project, case, where)
    before = snapshot(copy)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command(case), cwd=copy, capture_output=True, text=True, env=env, timeout=600)
    return Outcome(result, before, snapshot(copy))


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """The selected cases run side by side: each process mostly imports torch, so they overlap well."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    cases = [case for case in CASES if case.id in selected]
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 1))) as pool:
        futures = {case.id: pool.submit(run_case, case, project, tmp_path_factory.mktemp(case.id)) for case in cases}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    stderr = outcome.result.stderr
    assert "Traceback" not in stderr, stderr
    assert outcome.result.returncode == 2, stderr
    lines = stderr.splitlines()
    if case.after_progress:  # the progress bar of the work that found it comes first; the error is last
        assert lines[-1:] == [f"error: {case.message}"], stderr
        lines = [line for line in lines if line.startswith("error:")]
    assert lines == [f"error: {case.message}"]
    assert outcome.after == outcome.before  # earlier outputs byte-identical, nothing half-written beside them


def test_docs_table_is_the_rendered_cases() -> None:
    """docs/reliability.md shows exactly these cases; regenerate: python tests/reliability_cases.py --write."""
    assert page_table(TABLE_PAGE.read_text(encoding="utf-8")) == render_table()
    assert len({case.id for case in CASES}) == len(CASES)
