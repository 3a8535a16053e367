"""DVC stage `prompts`: data/prompts/<domain>.jsonl from params `prompts` and `seed` (paper §4.2.1)."""

from pathlib import Path

from acd.pipeline.jsonl import write_jsonl
from acd.pipeline.params import Seed, pick, read_params, section
from acd.pipeline.prompts import PromptsParams, build_prompts
from acd.pipeline.stage import run_stage

OUT = Path("data/prompts")


def main() -> None:
    params = read_params()
    prompts, seed = section(params, "prompts", PromptsParams), pick(params, Seed).seed
    built = {domain: build_prompts(domain, source, prompts, seed) for domain, source in prompts.domains.items()}
    for domain, rows in built.items():  # all domains first: a bad one leaves no output behind
        write_jsonl(OUT / f"{domain}.jsonl", rows)
        print(f"{OUT / f'{domain}.jsonl'}: {len(rows)} prompts")


if __name__ == "__main__":
    run_stage(main)
