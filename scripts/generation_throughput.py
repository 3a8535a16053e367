"""Generation throughput (new tokens per second) of the plain expert vs ACD, same model, same prompts.

    python scripts/generation_throughput.py --shape tiny            # the 4-layer test model
    python scripts/generation_throughput.py --shape gpt2-medium     # GPT2-Medium's shape, random weights
    python scripts/generation_throughput.py --model gpt2-medium --heads models/heads --layer 12

Random weights cost exactly what trained ones do, so ``--shape`` measures speed without the hub.
Heads are random too unless ``--heads`` is given. Prompts: the shipped WikiText-style sample.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GPT2Config

from acd.decoding import generate_new_tokens, generated_lengths
from acd.architectures import num_layers
from acd.heads import ExitHeads
from acd.loading import load_pretrained
from acd.model import Contrast, Exit, make_auto_contrastive
from acd.prompts import PromptsParams, Source, build_prompts
from acd.tiny import gpt2_tokenizer, make_tiny_model

SHAPES = {"tiny": dict(n_layer=4, n_embd=32, n_head=2), "gpt2-medium": dict(n_layer=24, n_embd=1024, n_head=16)}


def build_model(shape: str, directory: Path) -> Path:
    if shape == "tiny":
        return make_tiny_model(directory, n_layers=4, d_model=32)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(GPT2Config(**SHAPES[shape])).save_pretrained(directory)
    gpt2_tokenizer().save_pretrained(directory)
    return directory


def one_pass(model, tokenizer, prompts, strategy, max_new_tokens, batch_size) -> tuple[int, float, float]:
    """(new tokens, wall seconds, CPU seconds of this process) for decoding every prompt once."""
    tokens, wall, cpu = 0, time.perf_counter(), time.process_time()
    for begin in range(0, len(prompts), batch_size):
        new = generate_new_tokens(model, tokenizer, prompts[begin : begin + batch_size], strategy, max_new_tokens, seed=0)
        tokens += sum(generated_lengths(new, tokenizer.eos_token_id))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--model", help="hub id or directory (instead of --shape)")
    parser.add_argument("--heads", help="trained heads directory (default: random heads at --layer and the last layer)")
    parser.add_argument("--layer", type=int, help="amateur exit layer (default: half the depth)")
    parser.add_argument("--strategy", default="greedy")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--n-prompts", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        name = args.model or str(build_model(args.shape, Path(scratch) / "model"))
        base, tokenizer = load_pretrained(name, device=args.device, dtype=args.dtype)
    n_layers = num_layers(base)
    layer = args.layer or n_layers // 2
    heads = ExitHeads.load(args.heads) if args.heads else ExitHeads.for_model(base, [layer, n_layers], name, seed=1)
    model = make_auto_contrastive(base, Contrast(expert=Exit(n_layers, "head")), heads)
    source = Source(files=["acd:data/sample/wikitext.jsonl"])
    params = PromptsParams(domains={"wikitext": source}, n_prompts=args.n_prompts)
    prompts = [row["prompt"] for row in build_prompts("wikitext", source, params, seed=0)]
    settings = {"plain": None, "acd": Exit(layer, "head")}
    runs: dict[str, list[tuple[int, float, float]]] = {label: [] for label in settings}
    for repeat in range(args.repeats + 1):  # interleaved, so a busy spell on a shared machine hits both
        for label, amateur in settings.items():
            model.set_contrast(amateur=amateur)
            result = one_pass(model, tokenizer, prompts, args.strategy, args.max_new_tokens, args.batch_size)
            if repeat:  # the first round warms up
                runs[label].append(result)
    print(f"model={args.model or args.shape} device={model.device} dtype={args.dtype} strategy={args.strategy} "
          f"batch={args.batch_size} prompts={len(prompts)} max_new_tokens={args.max_new_tokens} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}")
    medians = {}
    for label, results in runs.items():
        wall = statistics.median(tokens / seconds for tokens, seconds, _ in results)
        cpu = statistics.median(tokens / seconds for tokens, _, seconds in results)
        medians[label] = wall
        print(f"{label:5s} {wall:10.1f} new tokens/s (wall, median)   {cpu:10.1f} new tokens per CPU-second")
    print(f"ACD / plain (wall) = {medians['acd'] / medians['plain']:.3f}")

if __name__ == "__main__":
    main()
