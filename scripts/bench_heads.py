"""Head-training throughput and peak memory, chunked loss vs full logits, and chunking throughput.

    python scripts/bench_heads.py train [--micro-batch 1] [--seq-len 512] [--layers 2,4,...,24]
    python scripts/bench_heads.py chunk FILE [FILE ...] [--model DIR] [--num-proc 1]

`train` builds the GPT2-Medium architecture with random weights (24 layers, d=1024, 16 heads; timing
needs no trained weights) and runs each loss mode in a fresh process, so each peak is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def one_mode(chunked: bool, micro_batch: int, seq_len: int, layers: list[int], loss_chunk: int) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from acd.training import train_step_benchmark

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_embd=1024, n_head=16, n_positions=1024, vocab_size=50257)
    model = GPT2LMHeadModel(config).eval().requires_grad_(False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = train_step_benchmark(model.to(device), layers, micro_batch, seq_len, chunked, loss_chunk=loss_chunk,
                                  steps=1)
    return {"chunked": chunked, "micro_batch": micro_batch, "seq_len": seq_len, "heads": len(layers),
            "loss_chunk": loss_chunk if chunked else None, "device": device, "threads": torch.get_num_threads(),
            **result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["train", "chunk", "_one"])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--layers", default=",".join(str(layer) for layer in range(2, 25, 2)))
    parser.add_argument("--loss-chunk", type=int, default=4096)
    parser.add_argument("--chunked", type=int, default=1)
    parser.add_argument("--model", default=None, help="tokenizer for `chunk` (default: a tiny GPT-2 built here)")
    parser.add_argument("--num-proc", type=int, default=1)
    args = parser.parse_args()
    layers = [int(layer) for layer in args.layers.split(",")]
    if args.what == "_one":
        print(json.dumps(one_mode(bool(args.chunked), args.micro_batch, args.seq_len, layers, args.loss_chunk)))
    elif args.what == "train":
        for chunked in (1, 0):
            command = [sys.executable, __file__, "_one", "--chunked", str(chunked), "--micro-batch",
                       str(args.micro_batch), "--seq-len", str(args.seq_len), "--layers", args.layers,
                       "--loss-chunk", str(args.loss_chunk)]
            print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip(), flush=True)
    else:
        import tempfile

        from acd.chunking import chunk_benchmark
        from acd.tiny import make_tiny_model

        with tempfile.TemporaryDirectory() as tmp:
            model = args.model or str(make_tiny_model(f"{tmp}/tiny", n_layers=1, d_model=8))
            rate = chunk_benchmark(model, args.files, n_documents=10**9, num_proc=args.num_proc, work_dir=tmp)
        print(json.dumps({"chunk_tokens_per_s": rate, "num_proc": args.num_proc}))


if __name__ == "__main__":
    main()
