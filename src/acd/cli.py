"""The ``acd`` command line. User mistakes print one line and exit with code 2."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from acd.errors import UsageError

app = typer.Typer(
    help="Auto-contrastive Decoding: contrast a language model's final layer with an earlier exit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _group() -> None:
    """Keep ``acd`` a command group even while it has few commands."""


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="Text to continue."),
    model: str = typer.Option("gpt2-medium", help="Hub id or local directory of a causal LM."),
    heads: Optional[str] = typer.Option(None, help="Trained exit heads directory (train_heads output)."),
    layer: int = typer.Option(12, help="Amateur exit layer."),
    alpha: float = typer.Option(0.1, help="Plausibility threshold in [0, 1]."),
    strategy: str = typer.Option("greedy", help="greedy | beam | top-k | top-p"),
    expert: Optional[str] = typer.Option(None, help="original | new (default: new with heads, else original)"),
    amateur: Optional[str] = typer.Option(None, help="head | lens (default: head with heads, else lens)"),
    max_new_tokens: int = typer.Option(100, min=1, help="Tokens to generate."),
    seed: int = typer.Option(0, help="Sampling seed."),
    no_acd: bool = typer.Option(False, "--no-acd", help="Decode with the plain expert instead."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)."),
) -> None:
    """Continue PROMPT with ACD (or the plain expert with --no-acd)."""
    from acd.decoding import generate_batch, strategy_kwargs
    from acd.loading import load

    strategy_kwargs(strategy)
    lm, tokenizer = load(
        model, heads=heads, layer=None if no_acd else layer, alpha=alpha, expert=expert, amateur=amateur, device=device
    )
    typer.echo(prompt + generate_batch(lm, tokenizer, [prompt], strategy, max_new_tokens, seed=seed)[0])


@app.command("tiny-model")
def tiny_model(
    directory: str = typer.Argument(..., help="Where to write the model and tokenizer."),
    arch: str = typer.Option("gpt2", help="gpt2 | gpt_neo | llama"),
    layers: int = typer.Option(4, min=1, help="Number of transformer blocks."),
    d_model: int = typer.Option(32, min=8, help="Hidden size."),
    seed: int = typer.Option(0, help="Initialisation seed."),
) -> None:
    """Write a tiny randomly initialised model with the real GPT-2 tokenizer (offline)."""
    from acd.tiny import ARCHS, make_tiny_model

    if arch not in ARCHS:
        raise UsageError(f"arch={arch!r} is not allowed: use one of {', '.join(ARCHS)}")
    typer.echo(make_tiny_model(directory, arch=arch, n_layers=layers, d_model=d_model, seed=seed))


@app.command("lm-eval")
def lm_eval(
    tasks: str = typer.Option(..., help="Comma-separated lm-eval tasks, e.g. lambada_openai,wikitext."),
    model_args: str = typer.Option(
        ..., "--model-args",
        help="pretrained=ID_OR_DIR[,heads=DIR][,layer=12][,alpha=0.1][,expert=new][,amateur=head][,exits=all+acd]",
    ),
    limit: Optional[float] = typer.Option(None, help="Documents per task (a fraction when < 1)."),
    batch_size: int = typer.Option(8, min=1, help="Sequences per forward pass."),
    num_fewshot: Optional[int] = typer.Option(None, min=0, help="Few-shot examples (default: each task's own)."),
    include_path: list[str] = typer.Option([], help="Directory of extra task YAMLs (repeatable)."),
    no_default_tasks: bool = typer.Option(False, "--no-default-tasks", help="Index only acd's local tasks and --include-path (fast)."),
    output: Optional[str] = typer.Option(None, help="Write the results as JSON here."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)."),
    seed: int = typer.Option(0, help="lm-eval's random, numpy, torch and few-shot seeds."),
) -> None:
    """Score tasks with lm-evaluation-harness on the ACD model, or on every exit from one pass (exits=...)."""
    from acd.benchmarks import evaluate_tasks
    from acd.io import write_json
    from acd.lm_eval_model import parse_model_args

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    if limit is not None and limit >= 1:
        limit = int(limit)
    document = evaluate_tasks(
        parse_model_args(model_args), names, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
        include_path=include_path, include_defaults=not no_default_tasks, device=device, seed=seed,
    )
    for task, by_exit in document["results"].items():
        metrics = sorted({m for values in by_exit.values() for m in values if "stderr" not in m})
        typer.echo(f"\n{task}\n" + f"{'exit':<10}" + "".join(f"{m:>18}" for m in metrics))
        for name, values in by_exit.items():
            typer.echo(f"{name:<10}" + "".join(f"{values.get(m, float('nan')):>18.4f}" for m in metrics))
    if output:
        write_json(output, document)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turn UsageError into ``error: ...`` and exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except UsageError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
