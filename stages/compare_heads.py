"""DVC stages for paper App. C, Table 6: the original vs the new expert head, alone and with ACD.

    python stages/compare_heads.py plain    # compare_heads_plain: greedy WikiText-103 from the other expert alone
    python stages/compare_heads.py acd      # compare_heads_acd: the other expert + ACD: greedy, LAMBADA, WikiText-2
    python stages/compare_heads.py report   # compare_heads: all four settings -> metrics/compare_heads.{json,md}

"The other expert" is the one params `expert` does not name; the pipeline's own stages already
cover the named one (generate_*@greedy, benchmark_acd) and both heads alone (benchmark_layers).
Only `acd` reads alpha, layer and amateur. Several GPUs: params `processes: N` (or `torchrun --nproc_per_node N
stages/compare_heads.py plain|acd`) splits the decoding and the lm-eval scoring by batch (the same bytes as one process).
"""

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from acd.eval.benchmarks import Benchmarks, contrast
from acd.eval.compare_heads import DOMAIN, GROUPS, STRATEGY, gather, other_expert, report_table
from acd.errors import UsageError
from acd.pipeline.generation import GenerationParams, Plain, generate_domains, load_generator, read_prompt_sets
from acd.eval.generation_metrics import GenerationMetricsParams, score_tree
from acd.io import write_json, write_text
from acd.pipeline.params import Decoding, pick, processes, read_params, section
from acd.reports.report import render_markdown
from acd.pipeline.stage import run_stage
from acd.pipeline.world import World, init_world

PROMPTS, HEADS = Path("data/prompts"), Path("models/heads")
OUT, JOURNAL = Path("data/compare_heads"), Path("data/journal/compare_heads")
METRICS, REPORT = Path("metrics/compare_heads.json"), Path("metrics/compare_heads.md")


def decode_and_score(kind: str, top: Any, params: dict[str, Any], world: World) -> None:
    """Greedy on the WikiText-103 prompts with ``top``'s expert (ACD when ``kind`` is acd), scored like the rest."""
    generation = section(params, "generation", GenerationParams)
    scoring = section(params, "generation_metrics", GenerationMetricsParams)
    prompts = PROMPTS / f"{DOMAIN}.jsonl"
    if not prompts.is_file():
        raise UsageError(f"compare_heads needs {prompts}: keep the {DOMAIN} domain in prompts.domains")
    prompt_sets = read_prompt_sets([prompts])  # checked before the model loads
    model, tokenizer = load_generator(top, HEADS, generation.dtype, contrast=kind == "acd", device=world.device)
    generate_domains(model, tokenizer, prompt_sets, OUT / kind / STRATEGY, JOURNAL / kind / STRATEGY,
                     model_name=top.model, kind=kind, strategy=STRATEGY, params=generation, seed=top.seed,
                     world=world)
    del model
    if world.main:
        write_json(OUT / kind / "metrics.json", score_tree(OUT / kind, [STRATEGY], scoring.scorer(), scoring, top.seed))


def read(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"compare_heads needs {path}: run `dvc repro compare_heads` (it runs what is missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def report() -> None:
    document = gather(
        plain=[read(Path("data/generation_metrics/plain.json")), read(OUT / "plain" / "metrics.json")],
        acd=[read(Path("data/generation_metrics/acd.json")), read(OUT / "acd" / "metrics.json")],
        layers={group: read(Path(f"metrics/benchmarks/{group}_layers.json")) for group in GROUPS},
        acd_benchmarks=[{group: read(Path(f"metrics/benchmarks/{group}_acd.json")) for group in GROUPS},
                        read(OUT / "acd" / "benchmarks.json")],
    )
    markdown = render_markdown([report_table(document)])
    write_json(METRICS, document)
    write_text(REPORT, markdown)
    print(markdown)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) == 2 else ""
    if kind not in ("plain", "acd", "report"):
        raise UsageError(f"arguments={sys.argv[1:]} are not allowed: compare_heads.py plain|acd|report")
    if kind == "report":
        report()
        return
    params = read_params()
    world = init_world(processes=processes(params))  # several processes (params or torchrun): split by batch
    if kind == "plain":
        top = pick(params, Plain)
        decode_and_score("plain", replace(top, expert=other_expert(top.expert)), params, world)
        return
    decoding = pick(params, Decoding)
    top = replace(decoding, expert=other_expert(decoding.expert))
    bench = section(params, "benchmarks", Benchmarks)
    decode_and_score("acd", top, params, world)
    benchmarks = {group: contrast(group, top, bench) for group in GROUPS}
    if world.main:
        write_json(OUT / "acd" / "benchmarks.json", benchmarks)


if __name__ == "__main__":
    run_stage(main)
