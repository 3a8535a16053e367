"""DVC stages `generate_plain`, `generate_acd` (one per strategy) and `generate_layers` (paper Fig. 2).

    python stages/generate.py plain STRATEGY   # the expert alone: reads model, expert, seed, generation
    python stages/generate.py acd STRATEGY     # ACD: also alpha, layer, amateur (and the other contrast knobs)
    python stages/generate.py layers           # greedy from each trained exit alone: model, seed, generation

Several GPUs: params `processes: N` (or `torchrun --nproc_per_node N stages/generate.py ...`); the output is
byte-identical to one process.
"""

import sys
from pathlib import Path

from acd.pipeline.decoding import strategy_kwargs
from acd.errors import UsageError
from acd.pipeline.generation import (
    GenerationParams, Plain, generate_domains, generate_layer_sweep, load_generator, read_prompt_sets,
)
from acd.core.loading import load
from acd.pipeline.params import Decoding, ModelSeed, pick, processes, read_params, section
from acd.pipeline.stage import run_stage
from acd.pipeline.world import init_world

PROMPTS, HEADS = Path("data/prompts"), Path("models/heads")
OUT, JOURNAL = Path("data/generations"), Path("data/journal/generations")
USAGE = "usage: generate.py plain|acd STRATEGY | generate.py layers"


def main() -> None:
    kind, *rest = sys.argv[1:] or [""]
    params = read_params()
    generation = section(params, "generation", GenerationParams)
    if kind == "layers" and not rest:
        top = pick(params, ModelSeed)
        files = [PROMPTS / f"{domain}.jsonl" for domain in generation.layer_sweep_domains]
        for path in files:
            if not path.is_file():
                raise UsageError(
                    f"generation.layer_sweep_domains: no prompts at {path}; domains must be in prompts.domains"
                )
        prompt_sets = read_prompt_sets(files)
        world = init_world(processes=processes(params))
        model, tokenizer = load(top.model, heads=HEADS, dtype=generation.dtype, device=world.device)
        generate_layer_sweep(model, tokenizer, prompt_sets, OUT / "layers", JOURNAL / "layers", model_name=top.model,
                             params=generation, seed=top.seed, world=world)
        return
    if kind not in ("plain", "acd") or len(rest) != 1:
        raise UsageError(f"arguments={sys.argv[1:]} are not allowed: {USAGE}")
    strategy = rest[0]
    strategy_kwargs(strategy)
    top = pick(params, Plain) if kind == "plain" else pick(params, Decoding)
    files = sorted(PROMPTS.glob("*.jsonl"))
    if not files:
        raise UsageError(f"prompts={str(PROMPTS)!r} holds no <domain>.jsonl: run the prompts stage first")
    prompt_sets = read_prompt_sets(files)  # every input is checked before the model loads
    world = init_world(processes=processes(params))  # several processes (params or torchrun): split by batch
    model, tokenizer = load_generator(top, HEADS, generation.dtype, contrast=kind == "acd", device=world.device)
    generate_domains(model, tokenizer, prompt_sets, OUT / kind / strategy, JOURNAL / kind / strategy,
                     model_name=top.model, kind=kind, strategy=strategy, params=generation, seed=top.seed,
                     world=world)


if __name__ == "__main__":
    run_stage(main)
