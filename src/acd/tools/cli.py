"""The ``acd`` command line. User mistakes print one line and exit with code 2."""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn, Optional

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
    layer: str = typer.Option("12", help="Amateur exit layer, or 'dynamic' (per token, see --candidate-layers)."),
    alpha: float = typer.Option(0.1, help="Plausibility threshold in [0, 1]."),
    strategy: str = typer.Option("greedy", help="greedy | beam | top-k | top-p"),
    expert: Optional[str] = typer.Option(None, help="original | new (default: new with heads, else original)"),
    amateur: Optional[str] = typer.Option(
        None, help="head | lens | model (default: model with --amateur-model, head with heads, else lens)"
    ),
    amateur_model: Optional[str] = typer.Option(
        None, help="A small LM with the same tokenizer as the amateur (contrastive decoding; --layer unused)."
    ),
    amateur_temperature: float = typer.Option(1.0, help="Amateur logits are divided by it (contrastive decoding 0.5)."),
    keep_tail: bool = typer.Option(
        True, "--keep-tail/--no-keep-tail", help="Tokens outside the plausible set keep p_EXP (ACD) or get -inf (CD)."
    ),
    candidate_layers: Optional[str] = typer.Option(None, help="Candidate exit layers of --layer dynamic, e.g. 2,4,6."),
    min_candidates: int = typer.Option(1, help="The plausible set keeps at least this many tokens."),
    max_new_tokens: int = typer.Option(100, min=1, help="Tokens to generate."),
    seed: int = typer.Option(0, help="Sampling seed."),
    no_acd: bool = typer.Option(False, "--no-acd", help="Decode with the plain expert instead."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)."),
) -> None:
    """Continue PROMPT with ACD (or the plain expert with --no-acd)."""
    from acd.core.loading import load
    from acd.core.spec import ContrastSpec
    from acd.pipeline.decoding import empty_prompt, generate_batch, strategy_kwargs

    strategy_kwargs(strategy)
    if not prompt:  # before minutes of loading; a prompt that tokenizes to nothing is refused after
        raise empty_prompt(prompt)
    knobs = {"alpha": alpha, "expert": expert, "amateur_temperature": amateur_temperature, "keep_tail": keep_tail,
             "min_candidates": min_candidates}
    amateur_knobs = {"layer": layer, "amateur": amateur, "amateur_model": amateur_model,
                     "candidate_layers": candidate_layers}
    spec = ContrastSpec(**knobs) if no_acd else ContrastSpec(**knobs, **amateur_knobs)
    lm, tokenizer = load(model, heads=heads, spec=spec, device=device)
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
    from acd.tools.tiny import ARCHS, make_tiny_model

    if arch not in ARCHS:
        raise UsageError(f"arch={arch!r} is not allowed: use one of {', '.join(ARCHS)}")
    typer.echo(make_tiny_model(directory, arch=arch, n_layers=layers, d_model=d_model, seed=seed))


@app.command("inspect")
def inspect_command(
    prompt: str = typer.Argument(..., help="Text whose next token (or every token, --positions all) to inspect."),
    model: str = typer.Option("gpt2-medium", help="Hub id or local directory of a causal LM."),
    heads: Optional[str] = typer.Option(None, help="Trained exit heads directory (train_heads output)."),
    layer: int = typer.Option(12, help="Amateur exit layer."),
    alpha: float = typer.Option(0.1, help="Plausibility threshold in [0, 1]."),
    expert: Optional[str] = typer.Option(None, help="original | new (default: new with heads, else original)"),
    amateur: Optional[str] = typer.Option(None, help="head | lens (default: head with heads, else lens)"),
    amateur_temperature: float = typer.Option(1.0, help="Amateur logits are divided by it before the contrast."),
    top: int = typer.Option(8, help="Tokens shown per distribution."),
    positions: str = typer.Option("last", help="last: the next token only | all: after every token of PROMPT."),
    exits: str = typer.Option("all", help="Exits shown: all | head (trained heads) | lens (lm_head at every layer)."),
    out: Optional[str] = typer.Option(None, help="Write a figure: .png, .svg, .pdf, or .html (figure + tables)."),
    generate_steps: int = typer.Option(
        0, "--generate", help="Greedy steps with and without ACD (an HTML page with --out)."
    ),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)."),
) -> None:
    """Show what every exit, the expert, the amateur and ACD predict next, and what ACD changes."""
    import os
    from pathlib import Path

    from rich.console import Console

    from acd.tools import inspection as insp
    from acd.tools import inspection_report as report
    from acd.core.loading import load

    insp.check_top(top)
    insp.check_positions(positions)
    insp.check_exit_set(exits)
    fmt = Path(out).suffix.lower().lstrip(".") if out else None
    allowed = ("html",) if generate_steps else ("png", "svg", "pdf", "html")
    if out is not None and fmt not in allowed:
        with_generate = " with --generate" if generate_steps else ""
        raise UsageError(f"out={out!r} is not allowed{with_generate}: use a {', '.join('.' + a for a in allowed)} file")
    if generate_steps < 0 or (generate_steps and positions != "last"):
        raise UsageError(f"generate={generate_steps} is not allowed: use a number of steps >= 1, with --positions last")
    lm, tokenizer = load(model, heads=heads, layer=layer, alpha=alpha, expert=expert, amateur=amateur,
                         amateur_temperature=amateur_temperature, device=device)
    # Piped output is never cut to 80 columns: a table row stays one line.
    console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 1000)
    if generate_steps:
        generation = insp.inspect_generation(lm, tokenizer, prompt, generate_steps, top=top, exits=exits)
        report.print_generation(console, generation)
        if out is not None:
            from acd.io import write_text

            write_text(out, report.generation_html(model, generation))
            console.print(f"wrote {out}", markup=False, highlight=False)
        return
    inspection = insp.inspect_prompt(lm, tokenizer, prompt, top=top, positions=positions, exits=exits)
    report.print_inspection(console, inspection)
    if out is not None:
        from acd.tools.inspection_figure import figure_bytes, save_figure
        from acd.io import write_text

        if fmt == "html":
            write_text(out, report.figure_html(model, inspection, figure_bytes(inspection, "png")))
        else:
            save_figure(inspection, out, fmt)
        console.print(f"wrote {out}", markup=False, highlight=False)

@app.command()
def chunk(params: str = typer.Option("params.yaml", help="Params file (reads model, corpus and heads).")) -> None:
    """The chunk stage: tokenize the corpus into data/blocks (token blocks + manifest)."""
    from acd.pipeline.chunking import run_from_params

    manifest = run_from_params(params)
    if "skipped" in manifest:
        typer.echo(f"data/blocks: no blocks, heads.source={manifest['skipped']['heads.source']!r} imports the heads")
        return
    typer.echo(f"data/blocks: {manifest['blocks']['train']} training and {manifest['blocks']['val']} validation "
               f"blocks of {manifest['block_size']} tokens from {manifest['documents']} documents")


@app.command("train-heads")
def train_heads(
    params: str = typer.Option("params.yaml", help="Params file (reads model, seed, train and heads)."),
) -> None:
    """The train_heads stage: train exit heads on data/blocks into models/heads (torchrun for several GPUs),
    or import released ones when heads.source names a multi-exit checkpoint."""
    import os

    from acd.pipeline.training import run_from_params

    metrics = run_from_params(params)
    if metrics is not None and "imported_from" in metrics:
        typer.echo(f"models/heads: exits {metrics['exit_layers']} imported from {metrics['imported_from']} "
                   f"(base checked: {', '.join(metrics['base_tensors_checked'])})")
        return
    if metrics is not None and os.environ.get("RANK", "0") == "0":
        for name, values in metrics["exits"].items():
            typer.echo(f"{name}: val loss {values['val_loss']:.4f}, perplexity {values['val_perplexity']:.2f}")


report_app = typer.Typer(help="Print results beside the paper's numbers.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("generation")
def report_generation(
    metrics: str = typer.Option("metrics/generation.json", help="generation_table output."),
    layers: str = typer.Option("metrics/generation_layers.csv", help="Per-exit sweep CSV (skipped if absent)."),
    markdown: Optional[str] = typer.Option(None, help="Also write the tables as Markdown to this file."),
) -> None:
    """Open-ended generation (paper Tables 1/5, Fig. 2): ours (paper) in the terminal and as Markdown."""
    from acd.io import write_text
    from acd.reports.report import generation_tables, load_generation_metrics, load_layer_rows, render_markdown, render_rich

    tables = generation_tables(load_generation_metrics(metrics), load_layer_rows(layers))
    render_rich(tables)
    if markdown:
        write_text(markdown, render_markdown(tables))


human_eval_app = typer.Typer(help="Pairwise human evaluation (paper App. D).", no_args_is_help=True)
app.add_typer(human_eval_app, name="human-eval")


@human_eval_app.command("export")
def human_eval_export(
    system_a: str = typer.Argument(..., help="Generations jsonl of one system, e.g. data/generations/plain/greedy/wikitext.jsonl."),
    system_b: str = typer.Argument(..., help="Generations jsonl of the other system, same prompts."),
    out: str = typer.Option("human_eval", help="Directory for sheet.csv and sheet.html (for annotators)."),
    key: str = typer.Option("human_eval.key.json", help="Which system is A per item; keep it away from annotators."),
    n_items: int = typer.Option(40, help="Items to sample (the paper: 40 WikiText-103 prompts)."),
    seed: int = typer.Option(0, help="Seed for the item sample and the A/B order."),
) -> None:
    """Write an A/B sheet (CSV + HTML) with the order shuffled per item, and its key apart."""
    from acd.eval.human_eval import export_sheet

    paths = export_sheet(system_a, system_b, out, key, n_items=n_items, seed=seed)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@human_eval_app.command("aggregate")
def human_eval_aggregate(
    labels: list[str] = typer.Argument(..., help="Filled labels CSVs, one per annotator."),
    key: str = typer.Option("human_eval.key.json", help="The key written by export."),
    out: Optional[str] = typer.Option(None, help="Also write the result as JSON here."),
) -> None:
    """Majority label per item and mean pairwise Cohen's kappa per question."""
    from acd.eval.human_eval import aggregate
    from acd.io import write_json
    from acd.reports.report import Table, fmt, render_rich

    result = aggregate(key, labels)
    systems = [*result["systems"], "tie"]
    rows = [
        [question, *(str(summary["distribution"][name]) for name in systems), fmt(summary["kappa"])]
        for question, summary in result["questions"].items()
    ]
    render_rich([Table(f"Majority labels over {result['n_items']} items, {result['n_annotators']} annotators",
                       ["question", *systems, "kappa"], rows, "kappa: mean Cohen's kappa over annotator pairs")])
    if out:
        write_json(out, result)

@app.command("lm-eval")
def lm_eval(
    tasks: str = typer.Option(..., help="Comma-separated lm-eval tasks, e.g. lambada_openai,wikitext."),
    model_args: str = typer.Option(
        ..., "--model-args",
        help="pretrained=ID_OR_DIR[,heads=DIR][,layer=12|dynamic][,alpha=0.1][,expert=new][,amateur=head|lens|model]"
        "[,amateur_model=ID_OR_DIR][,amateur_temperature=1.0][,keep_tail=true][,candidate_layers=2+4+6]"
        "[,exits=all+acd]",
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
    from acd.eval.benchmarks import evaluate_tasks
    from acd.io import write_json
    from acd.eval.lm_eval_model import parse_model_args

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    if limit is not None and limit >= 1:
        limit = int(limit)
    document = evaluate_tasks(
        parse_model_args(model_args), names, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
        include_path=include_path, include_defaults=not no_default_tasks, device=device, seed=seed,
    )
    if document is None:  # under torchrun: another process reports
        return
    for task, by_exit in document["results"].items():
        metrics = sorted({m for values in by_exit.values() for m in values if "stderr" not in m})
        typer.echo(f"\n{task}\n" + f"{'exit':<10}" + "".join(f"{m:>18}" for m in metrics))
        for name, values in by_exit.items():
            typer.echo(f"{name:<10}" + "".join(f"{values.get(m, float('nan')):>18.4f}" for m in metrics))
    if output:
        write_json(output, document)

@app.command()
def bench(
    model: str = typer.Option(
        "random-gpt2-medium",
        help="random-gpt2-medium (GPT2-Medium built with random weights) or a hub id / local directory.",
    ),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)."),
    dtype: str = typer.Option("float32", help="float32 | float16 | bfloat16"),
    layer: Optional[int] = typer.Option(None, help="Amateur exit layer (default: half the layers, 12 of GPT2-Medium)."),
    reps: Optional[int] = typer.Option(None, help="Timed repetitions per variant (default 3; 2 with --quick)."),
    out: str = typer.Option("metrics/bench.json", help="Where the figures are written (JSON, merged by figure)."),
    quick: bool = typer.Option(False, "--quick", help="Shorter sequences and fewer repetitions (about a minute)."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    figure: Optional[list[str]] = typer.Option(None, "--figure", help="Measure only this figure (repeatable)."),
    corpus: Optional[list[str]] = typer.Option(
        None, "--corpus", help="Corpus file for chunk_tokens_per_s (.txt/.jsonl/.parquet, repeatable; default: sample)."
    ),
) -> None:
    """Time ACD against the plain model, the exit sweep, head training and chunking; write the figures to OUT."""
    from acd.tools.perf import BenchOptions, run_bench, summary

    results = run_bench(
        BenchOptions(model=model, device=device, dtype=dtype, layer=layer, reps=reps, quick=quick, threads=threads,
                     corpus=tuple(corpus or ())),
        out,
        figure,
    )
    for name, record in results.items():
        typer.echo(summary(name, record))
    typer.echo(f"wrote {out}")


@app.command("grid-plot")
def grid_plot(
    exp_json: Optional[str] = typer.Argument(None, help="Saved `dvc exp show --json` output (default: run it here)."),
    domain: str = typer.Option("wikitext", help="Generation domain of the greedy diversity, or 'mean' over domains."),
    out: str = typer.Option("metrics/grid.png", help="Heat maps (PNG)."),
    table: str = typer.Option("metrics/grid.md", help="The same numbers as markdown tables."),
) -> None:
    """LAMBADA accuracy and greedy diversity of ACD over the layer × alpha grid of DVC experiments."""
    from acd.reports.grid import grid_points, markdown_tables, read_exp_show, write_grid

    points = grid_points(read_exp_show(exp_json), domain)
    write_grid(points, domain, out, table)
    typer.echo(markdown_tables(points, domain) + f"\nwrote {out} and {table}")


@app.command()
def demo(
    dir: str = typer.Option("demo", "--dir", help="Where to build the demo git + DVC repository."),
    force: bool = typer.Option(False, "--force", help="Replace DIR if it exists."),
) -> None:
    """Run the whole pipeline offline on a tiny model and sample data, then print the reports."""
    from acd.tools.demo import run_demo

    path = run_demo(dir, force=force)
    typer.echo(f"\nDemo repository: {path}\nTry: cd {dir} && dvc exp run -S alpha=0.2 && dvc exp show && dvc plots show")


def option_error(error: Exception, args: list[str]) -> str:
    """A bad option as one line naming it and the value given (click's own text says what is allowed)."""
    param, message = getattr(error, "param", None), getattr(error, "message", str(error))
    opts = getattr(param, "opts", [])
    for index, arg in enumerate(args):
        for opt in opts:
            if opt.startswith("--") and arg.startswith(opt + "="):
                value = arg[len(opt) + 1:]
            elif arg == opt and index + 1 < len(args):
                value = args[index + 1]
            else:
                continue
            return f"{param.name}={value!r} is not allowed: {message[:1].lower()}{message[1:]}"
    return f"{error.format_message()} (see --help)"  # type: ignore[attr-defined]


DEBUG_ENV = "ACD_DEBUG"  # set to 1 to see the traceback of an unexpected error
INTERRUPTED = 130  # the shell's exit status after Ctrl-C (128 + SIGINT)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every error ends as one line ``error: ...`` and a non-zero exit.

    User mistakes exit 2. An interrupt exits 130. Anything unexpected exits 1; its traceback is
    printed only when ``ACD_DEBUG=1``. Click's exceptions are recognised by their public
    attributes (``exit_code``, ``format_message``): typer 0.29 vendors its own copy of click, so
    ``click.ClickException`` does not catch them, and ``typer._click`` is private.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args=args or ["--help"], standalone_mode=False)
    except UsageError as error:
        fail(str(error), 2)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", INTERRUPTED)
    except typer.Exit as error:
        sys.exit(error.exit_code)
    except Exception as error:  # noqa: BLE001 - the one place that turns any error into one line
        if is_click_error(error):
            if type(error).__name__ == "NoArgsIsHelpError":  # a command group called bare: its help
                error.show()  # type: ignore[attr-defined]
                sys.exit(error.exit_code)  # type: ignore[attr-defined]
            if error.exit_code == 2:  # type: ignore[attr-defined]  # click's UsageError and its subclasses
                fail(option_error(error, args), 2)
            fail(error.format_message(), error.exit_code)  # type: ignore[attr-defined]
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
            fail(f"unexpected {type(error).__name__}: {first_line(str(error))}", 1)
        fail(f"unexpected {type(error).__name__}: {first_line(str(error))} (set {DEBUG_ENV}=1 for the traceback)", 1)
    if code == INTERRUPTED:  # typer turns Ctrl-C into this return value when it does not exit itself
        fail("interrupted", INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def is_click_error(error: BaseException) -> bool:
    """A click exception (from click itself or typer's vendored copy): it carries its exit code and message."""
    return isinstance(error, getattr(typer, "TyperException", ())) or (
        hasattr(error, "exit_code") and callable(getattr(error, "format_message", None))
    )


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "(no message)"


def fail(message: str, code: int) -> NoReturn:
    """Print one ``error:`` line and exit with ``code``."""
    typer.echo(f"error: {first_line(message)}", err=True)
    sys.exit(code)

if __name__ == "__main__":
    main()
