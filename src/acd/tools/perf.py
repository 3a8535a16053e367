"""``acd bench``: what ACD costs over the plain model, the one-pass exit sweep, head training and chunking.

Each figure runs its variants interleaved, repetition by repetition (the order flips every
repetition), and reports the median of the per-repetition ratios, so a slow spell on a shared
machine slows both sides of a ratio alike. The head-training figures run in a spawned child
process (:mod:`acd.tools.perf_training`), so its memory peak is its own and goes back when it ends.
:data:`FIGURES` maps a figure's name to the function that measures it; the results, keyed by
name, go to ``metrics/bench.json``, each with its goal, the timings behind it, its setup and the
machine it ran on. A figure is one more entry there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from tqdm import tqdm
from transformers import AutoModelForCausalLM, GPT2Config, PretrainedConfig

from acd.core.architectures import num_layers
from acd.tools.perf_training import MEMORY_METHODS, TrainWorkload, measure_in_child, peak_ratio, spread_layers, summarise
from acd.pipeline.chunking import FILE_SUFFIXES, chunk_benchmark, resolve_file
from acd.core.contrast import plausible_mask
from acd.errors import UsageError
from acd.core.exits import parse_exits, score_exits
from acd.core.heads import ExitHeads
from acd.io import write_json
from acd.core.loading import DTYPES, load_pretrained, resolve_dtype
from acd.core.model import AutoContrastiveMixin, Contrast, Exit, make_auto_contrastive
from acd.tools.tiny import gpt2_tokenizer

DEFAULT_OUT = "metrics/bench.json"
DEVICES = ("cpu", "cuda")

# The paper's main model built from its configuration with random weights: timing needs no
# download, and the ACD arithmetic is dense, so its cost barely depends on the weights (random
# weights give flat distributions and large plausible sets, which slow its selects: it errs high).
RANDOM_MODELS: dict[str, Callable[[], PretrainedConfig]] = {
    "random-gpt2-medium": lambda: GPT2Config(n_layer=24, n_embd=1024, n_head=16, vocab_size=50257, n_positions=1024),
}

# The variants every figure can run: the unmodified transformers model, and ACD with each amateur kind.
PLAIN = "plain"
AMATEURS = ("head", "lens")


@dataclass(frozen=True)
class Workload:
    """The sizes the figures run. ``FULL`` is issue 7's; ``CPU`` and ``QUICK`` shrink what a CPU cannot afford."""

    prompt_tokens: int = 32
    new_tokens: int = 64
    greedy_batches: tuple[int, ...] = (1, 8)
    score_tokens: int = 512
    score_batch: int = 8
    sweep_batch: int = 8  # texts of sweep_tokens tokens, each scored on its last sweep_continuation tokens
    sweep_tokens: int = 128
    sweep_continuation: int = 4
    train_exits: int = 12  # heads, spread evenly up to the last layer (2, 4, ..., 24 of GPT2-Medium)
    train_micro_batch: int = 4
    train_seq_len: int = 512
    reps: int = 3


FULL = Workload()
# On a CPU: 12 heads with AdamW and 4x512 full logits need over 25 GB and minutes a step; 12 heads at 1x256 fit.
CPU = replace(FULL, sweep_batch=1, sweep_tokens=64, train_micro_batch=1, train_seq_len=256)
QUICK = Workload(new_tokens=8, score_tokens=64, sweep_batch=1, sweep_tokens=32, train_exits=2, train_micro_batch=1,
                 train_seq_len=64, reps=2)


@dataclass(frozen=True)
class BenchOptions:
    """What ``acd bench`` was asked for, checked before anything is built."""

    model: str = "random-gpt2-medium"
    device: str | None = None
    dtype: str = "float32"
    layer: int | None = None
    reps: int | None = None
    quick: bool = False
    threads: int | None = None
    seed: int = 0
    corpus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.device is not None and self.device not in DEVICES:
            raise UsageError(f"device={self.device!r} is not allowed: use one of {', '.join(DEVICES)}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("device='cuda' is not allowed: no CUDA device is visible to torch here; use --device cpu")
        if self.dtype not in DTYPES or self.dtype == "auto":
            raise UsageError(f"dtype={self.dtype!r} is not allowed: use one of float32, float16, bfloat16")
        if self.reps is not None and self.reps < 1:
            raise UsageError(f"reps={self.reps} is not allowed: reps must be an integer >= 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads={self.threads} is not allowed: threads must be an integer >= 1")
        if self.layer is not None and self.layer < 1:
            raise UsageError(f"layer={self.layer} is out of range: it must be an integer >= 1 (the amateur's exit)")
        for name in self.corpus:
            path = resolve_file(name)
            if not path.is_file() or path.suffix not in FILE_SUFFIXES:
                raise UsageError(f"corpus={name!r} is not allowed: give an existing {', '.join(FILE_SUFFIXES)} file")

    @property
    def workload(self) -> Workload:
        base = QUICK if self.quick else FULL if self.resolved_device == "cuda" else CPU
        return base if self.reps is None else replace(base, reps=self.reps)

    @property
    def resolved_device(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


def build_base(options: BenchOptions, device: str) -> nn.Module:
    """The frozen base model: a random architecture from RANDOM_MODELS, or loaded by name."""
    torch.manual_seed(options.seed)
    if options.model in RANDOM_MODELS:
        base = AutoModelForCausalLM.from_config(RANDOM_MODELS[options.model]())
        base.to(device=device, dtype=resolve_dtype(options.dtype)).eval().requires_grad_(False)
    else:
        base, _ = load_pretrained(options.model, device=device, dtype=options.dtype)
    # Every run generates exactly the tokens asked for: an early end-of-text would time less work.
    base.generation_config.eos_token_id = None
    return base


def plain_class(model: nn.Module) -> type:
    """The transformers class under the ACD mixin: its forward is the unmodified model's."""
    return next(cls for cls in type(model).__mro__ if not issubclass(cls, AutoContrastiveMixin))


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    """The machine a figure ran on; the load average tells a quiet machine from a shared, busy one."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": device,
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


@dataclass
class Timings:
    """Seconds per run by variant: wall clock (the figure) and this process's CPU time.

    On a machine shared with other work the CPU time barely moves when the wall clock does, so
    the two ratios side by side tell the cost of ACD from a busy neighbour (with one thread:
    several OpenMP threads also spend CPU time waiting for each other).
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    def ratios(self, variant: str, baseline: str = "plain") -> dict[str, float]:
        return {
            "ratio": round(paired_ratio(self.wall[variant], self.wall[baseline]), 4),
            "cpu_time_ratio": round(paired_ratio(self.cpu[variant], self.cpu[baseline]), 4),
        }

    def median(self, variant: str) -> float:
        return statistics.median(self.wall[variant])


class Bench:
    """What the figures share: the options, the workload, and one model with random exit heads.

    The model is built once; :meth:`variant` switches it between the plain transformers forward
    and ACD with a ``head`` amateur (random exit heads at the amateur layer and the last layer:
    the paper's new expert) or a ``lens`` amateur (the model's own lm_head: the original expert).
    """

    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        self.workload = options.workload
        self.device = options.resolved_device
        if options.threads is not None:
            torch.set_num_threads(options.threads)

    @functools.cached_property
    def model(self) -> nn.Module:
        base = build_base(self.options, self.device)
        n_layers = num_layers(base)
        if not 1 <= self.layer(n_layers) < n_layers:
            raise UsageError(f"layer={self.options.layer} is out of range: allowed 1..{n_layers - 1} for this model")
        heads = ExitHeads.for_model(
            base, [self.layer(n_layers), n_layers], base_model=self.options.model, seed=self.options.seed
        )
        return make_auto_contrastive(base, self.contrast("head", n_layers), heads)

    def layer(self, n_layers: int) -> int:
        """The amateur's layer: as given, else half the depth (12 of GPT2-Medium's 24, the paper's)."""
        return self.options.layer if self.options.layer is not None else n_layers // 2

    def contrast(self, amateur: str, n_layers: int) -> Contrast:
        return Contrast(expert=Exit(n_layers, amateur), amateur=Exit(self.layer(n_layers), amateur))

    @contextlib.contextmanager
    def variant(self, name: str) -> Iterator[nn.Module]:
        """The model as ``plain`` (transformers' own forward) or as ACD with the ``name`` amateur."""
        model = self.model
        acd_class = type(model)
        if name == PLAIN:
            model.__class__ = plain_class(model)
        else:
            contrast = self.contrast(name, num_layers(model))
            model.set_contrast(expert=contrast.expert, amateur=contrast.amateur)
        try:
            yield model
        finally:
            model.__class__ = acd_class

    def token_ids(self, batch: int, length: int) -> torch.Tensor:
        """Random token ids: the cost of a forward does not depend on which tokens they are."""
        generator = torch.Generator().manual_seed(self.options.seed)
        vocab = self.model.get_output_embeddings().weight.shape[0]
        return torch.randint(0, vocab, (batch, length), generator=generator).to(self.device)

    def synchronize(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    @functools.cached_property
    def plausible_fraction(self) -> float:
        """Mean share of the vocabulary in V_head (alpha = 0.1) under the expert, on random text.

        It is what the contrast's selects depend on: random weights give flat distributions with a
        large V_head, a trained model a handful of tokens.
        """
        with self.variant(PLAIN) as model, torch.no_grad():
            logits = model(self.token_ids(1, min(64, self.workload.score_tokens))).logits
        return round(plausible_mask(torch.log_softmax(logits.float(), dim=-1), 0.1).float().mean().item(), 4)

    @functools.cached_property
    def training(self) -> dict[str, Any]:
        """Both losses' head-training steps, measured once in a child process for the three training figures."""
        return measure_in_child(functools.partial(build_base, self.options, self.device), train_workload(self))

    def setup(self) -> dict[str, Any]:
        n_layers = num_layers(self.model)
        return {
            "model": self.options.model,
            "dtype": self.options.dtype,
            "layers": n_layers,
            "amateur_layer": self.layer(n_layers),
            "head": f"expert = new exit head at layer {n_layers}, amateur = exit head at layer "
            f"{self.layer(n_layers)} (random ExitHeads, std 0.02)",
            "lens": "expert = original lm_head, amateur = lm_head on "
            f"final_norm(hidden_states[{self.layer(n_layers)}])",
            "plain": "the unmodified transformers model (its own forward and lm_head)",
            "plausible_fraction": self.plausible_fraction,
            "workload": asdict(self.workload),
        }

    def interleaved(self, runs: dict[str, Callable[[], object]], desc: str) -> Timings:
        """Each variant once per repetition, the order flipped every repetition."""
        names = list(runs)
        timings = Timings({name: [] for name in names}, {name: [] for name in names})
        with tqdm(total=self.workload.reps * len(names), desc=desc, unit="run", leave=False) as progress:
            for rep in range(self.workload.reps):
                for name in names if rep % 2 == 0 else names[::-1]:
                    self.synchronize()
                    wall, cpu = time.perf_counter(), time.process_time()
                    runs[name]()
                    self.synchronize()
                    timings.wall[name].append(time.perf_counter() - wall)
                    timings.cpu[name].append(time.process_time() - cpu)
                    progress.update()
        return timings

    def greedy(self, variant: str, input_ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
        """Greedy generation with KV cache, exactly ``new_tokens`` tokens per sequence."""
        with self.variant(variant) as model, torch.inference_mode():
            output = model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
                do_sample=False, num_beams=1, use_cache=True, pad_token_id=0,
            )
        if output.shape[1] != input_ids.shape[1] + new_tokens:
            made = output.shape[1] - input_ids.shape[1]
            raise RuntimeError(f"generation stopped after {made} of {new_tokens} tokens")
        return output

    def score(self, variant: str, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.variant(variant) as model:
            return hflm_log_likelihood(model, input_ids)


@torch.no_grad()
def hflm_log_likelihood(model: nn.Module, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lm-eval's HFLM arithmetic for whole-sequence continuations (``_loglikelihood_tokens``).

    log_softmax over the model's logits (for the ACD model they are already log-probs, which
    HFLM normalises again all the same), then per sequence the greedy check and the gathered,
    summed log-likelihood of the tokens.
    """
    log_probs = F.log_softmax(model(input_ids).logits, dim=-1)[:, :-1]
    targets = input_ids[:, 1:]
    is_greedy = (log_probs.argmax(dim=-1) == targets).all(dim=-1)
    return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(-1), is_greedy


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over repetitions of numerator/denominator, each pair measured back to back."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def figure(
    value: float,
    cases: dict[str, Any],
    setup: dict[str, Any],
    machine_info: dict[str, Any],
    goal_max: float | None = None,
    limit_max: float | None = None,
    goal_min: float | None = None,
) -> dict[str, Any]:
    """One figure's record in bench.json: its value against its goal, and what it was measured on."""
    record: dict[str, Any] = {"value": round(value, 4), "cases": cases, "setup": setup, "machine": machine_info}
    meets = True
    if goal_max is not None:
        record["goal_max"] = goal_max
        meets = meets and value <= goal_max
    if goal_min is not None:
        record["goal_min"] = goal_min
        meets = meets and value >= goal_min
    if limit_max is not None:
        record["limit_max"] = limit_max
    record["meets_goal"] = meets
    return record


def acd_greedy_over_plain(bench: Bench) -> dict[str, Any]:
    """Per-token time of ACD greedy generation over plain greedy, per batch size and amateur kind.

    The value is the worst case. Floor: one extra vocabulary projection per token (1024 x 50257 for
    GPT2-Medium) over the body's 24 blocks, about 1.14.
    """
    workload = bench.workload
    machine_info = machine(bench.device)
    cases: dict[str, Any] = {}
    for batch in workload.greedy_batches:
        prompt = bench.token_ids(batch, workload.prompt_tokens)
        names = (PLAIN, *AMATEURS)
        for name in names:  # warm-up: first-call costs (allocator, kernels) are not per-token costs
            bench.greedy(name, prompt, 2)
        timings = bench.interleaved(
            {name: functools.partial(bench.greedy, name, prompt, workload.new_tokens) for name in names},
            desc=f"greedy batch {batch}",
        )
        for amateur in AMATEURS:
            cases[f"{amateur}_batch{batch}"] = {
                **timings.ratios(amateur),
                "plain_ms_per_token": round(1000 * timings.median(PLAIN) / workload.new_tokens, 3),
                "acd_ms_per_token": round(1000 * timings.median(amateur) / workload.new_tokens, 3),
            }
    value = max(case["ratio"] for case in cases.values())
    return figure(value, cases, bench.setup(), machine_info, goal_max=1.15, limit_max=1.25)


def acd_score_over_plain(bench: Bench) -> dict[str, Any]:
    """lm-eval-style scoring of whole texts (HFLM's log_softmax, greedy check, gather): ACD over plain.

    Both sides run the same HFLM arithmetic; the ACD side's forward also computes the amateur
    head and the contrast at every position. Amateur: the ``head`` kind (what the paper scores).
    """
    workload = bench.workload
    machine_info = machine(bench.device)
    texts = bench.token_ids(workload.score_batch, workload.score_tokens)
    names = (PLAIN, "head")
    for name in names:
        bench.score(name, texts[:, :16])
    timings = bench.interleaved({name: functools.partial(bench.score, name, texts) for name in names}, desc="score")
    tokens = workload.score_batch * workload.score_tokens
    cases = {
        "head": {
            **timings.ratios("head"),
            "plain_tokens_per_s": round(tokens / timings.median(PLAIN), 2),
            "acd_tokens_per_s": round(tokens / timings.median("head"), 2),
        }
    }
    return figure(cases["head"]["ratio"], cases, bench.setup(), machine_info, goal_max=1.2)


@contextlib.contextmanager
def swapped_heads(model: nn.Module, heads: ExitHeads) -> Iterator[nn.Module]:
    """The ACD model with other exit heads for a while."""
    kept = model.acd_heads
    model.acd_heads = heads.to(device=model.device, dtype=model.dtype).requires_grad_(False)
    try:
        yield model
    finally:
        model.acd_heads = kept


def sweep_speedup(bench: Bench) -> dict[str, Any]:
    """Scoring every exit head (2, 4, ..., 24 of GPT2-Medium) from one body pass vs one pass per exit.

    Both sides run :func:`acd.core.exits.score_exits`, the code behind ``acd lm-eval --model_args exits=...``:
    lm-eval-style requests (a text whose last ``sweep_continuation`` tokens are the continuation,
    as in LAMBADA), the heads only at the continuation positions. The per-exit side is the same
    call with one exit, so it runs the body once per exit. The two sides' log-likelihoods must agree.
    """
    workload = bench.workload
    machine_info = machine(bench.device)
    model = bench.model
    n_layers = num_layers(model)
    layers = spread_layers(n_layers, max(1, n_layers // 2))
    heads = ExitHeads.for_model(model, layers, base_model=bench.options.model, seed=bench.options.seed)
    texts = bench.token_ids(workload.sweep_batch, workload.sweep_tokens).tolist()
    inputs = [text[:-1] for text in texts]
    continuations = [text[-workload.sweep_continuation:] for text in texts]
    with swapped_heads(model, heads):
        contrasts = parse_exits("heads", model)

        def one_pass() -> torch.Tensor:
            return score_exits(model, contrasts, inputs, continuations, bench.device)[0]

        def per_exit() -> torch.Tensor:
            return torch.cat([score_exits(model, {name: contrast}, inputs, continuations, bench.device)[0]
                              for name, contrast in contrasts.items()], dim=1)

        difference = (one_pass() - per_exit()).abs().max().item()  # also the warm-up
        if not difference <= 1e-3 * len(continuations[0]):
            raise RuntimeError(f"one pass and per-exit passes disagree by {difference}")
        timings = bench.interleaved({"one_pass": one_pass, "per_exit": per_exit}, desc="sweep")
    case = {
        **timings.ratios("per_exit", baseline="one_pass"),
        "one_pass_s": round(timings.median("one_pass"), 3),
        "per_exit_s": round(timings.median("per_exit"), 3),
        "max_abs_difference": difference,
    }
    setup = {
        "model": bench.options.model,
        "dtype": bench.options.dtype,
        "exits": list(contrasts),
        "texts": f"{workload.sweep_batch} random texts of {workload.sweep_tokens} tokens, each scored on its last "
        f"{workload.sweep_continuation} tokens (lm-eval loglikelihood requests, LAMBADA-like)",
        "workload": asdict(workload),
    }
    return figure(case["ratio"], {"heads": case}, setup, machine_info, goal_min=6.0)


def train_workload(bench: Bench) -> TrainWorkload:
    workload = bench.workload
    return TrainWorkload(exits=workload.train_exits, micro_batch=workload.train_micro_batch,
                         seq_len=workload.train_seq_len, reps=workload.reps, seed=bench.options.seed)


def train_setup(bench: Bench, raw: dict[str, Any]) -> dict[str, Any]:
    workload = train_workload(bench)
    return {
        "model": bench.options.model,
        "dtype": bench.options.dtype,
        "exit_layers": raw["exit_layers"],
        "micro_batch": f"{workload.micro_batch}x{workload.seq_len} random tokens, one micro-batch a step",
        "loss_chunk": workload.loss_chunk,
        "chunked": f"train.loss_chunk={workload.loss_chunk}: each head's logits {workload.loss_chunk} positions at "
        "a time, each chunk back-propagated at once",
        "full": "train.loss_chunk=null: every head's logits for the whole micro-batch, one backward",
        "peak_memory": "peak during one step's forward and backward above the steady state (base model, heads, "
        "their gradients, AdamW state: what the run holds whatever the loss); the optimiser step is not included",
        "memory_method": MEMORY_METHODS["cuda" if bench.device == "cuda" else "cpu"],
        "steady_state_tensor_bytes": raw["steady_state_tensor_bytes"],
        "workload": asdict(workload),
    }


def training_figure(
    bench: Bench, value: Callable[[dict[str, Any], dict[str, Any]], float], **goal: float
) -> dict[str, Any]:
    """A figure of the one training measurement (:attr:`Bench.training`): ``value(raw, cases)`` picks its number."""
    raw = bench.training
    cases = summarise(raw, train_workload(bench))
    return figure(value(raw, cases), cases, train_setup(bench, raw), machine(bench.device), **goal)


def train_step_tokens_per_s(bench: Bench) -> dict[str, Any]:
    """Head-training tokens (targets) per second of one step (forward, backward, AdamW), chunked loss."""
    return training_figure(bench, lambda raw, cases: cases["chunked"]["tokens_per_s"])


def train_peak_mem_bytes(bench: Bench) -> dict[str, Any]:
    """Peak bytes above the steady state during a head-training step's forward and backward, chunked loss."""
    return training_figure(bench, lambda raw, cases: cases["chunked"]["peak_above_steady_bytes"])


def chunked_over_full_peak_mem(bench: Bench) -> dict[str, Any]:
    """train_peak_mem_bytes of the chunked loss over that of full logits (median of back-to-back pairs)."""
    return training_figure(bench, lambda raw, cases: peak_ratio(raw), goal_max=0.35)


# The shipped sample corpus (~55k GPT-2 tokens), read this many times over: enough tokens that the
# fixed costs (loading the tokenizer, hashing the blocks) do not dominate the rate.
SAMPLE_CORPUS = "acd-data:sample/corpus.jsonl"
SAMPLE_REPEATS = 8


def chunk_tokens_per_s(bench: Bench) -> dict[str, Any]:
    """Tokens per second of the chunk stage (:func:`acd.pipeline.chunking.chunk_corpus`: read, tokenize, pack, write blocks).

    Corpus: ``--corpus`` files, else the sample corpus shipped in the package. Tokenizer: the
    model's (the random models use GPT-2's BPE, which ships offline).
    """
    files = list(bench.options.corpus) or [SAMPLE_CORPUS] * SAMPLE_REPEATS
    machine_info = machine(bench.device)
    with tempfile.TemporaryDirectory() as tmp:
        model = bench.options.model
        if model in RANDOM_MODELS:  # a directory with the config and tokenizer (no weights: none are read)
            model = str(Path(tmp) / "tokenizer")
            RANDOM_MODELS[bench.options.model]().save_pretrained(model)
            gpt2_tokenizer().save_pretrained(model)
        runs = [chunk_benchmark(model, files, work_dir=tmp) for _ in range(bench.workload.reps)]
    rates = [run["tokens"] / run["seconds"] for run in runs]
    case = {"tokens": runs[0]["tokens"], "documents": runs[0]["documents"], "seconds": [r["seconds"] for r in runs]}
    setup = {"model": bench.options.model, "corpus": files, "block_size": runs[0]["block_size"],
             "workload": {"reps": bench.workload.reps}}
    return figure(statistics.median(rates), {"chunk": case}, setup, machine_info)


def summary(name: str, record: dict[str, Any]) -> str:
    """One line per figure for the terminal: value, goal, and each case's ratio where it has one."""
    goals = []
    if "goal_max" in record:
        goals.append(f"<= {record['goal_max']}")
    if "goal_min" in record:
        goals.append(f">= {record['goal_min']}")
    verdict = f" (goal {' and '.join(goals)}: {'met' if record['meets_goal'] else 'NOT met'})" if goals else ""
    cases = record.get("cases", {})
    ratios = ", ".join(f"{case} {values['ratio']}" for case, values in cases.items() if "ratio" in values)
    return f"{name}: {record['value']}{verdict}" + (f"; {ratios}" if ratios else "")


# name -> function(bench) -> record.
FIGURES: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "acd_greedy_over_plain": acd_greedy_over_plain,
    "acd_score_over_plain": acd_score_over_plain,
    "sweep_speedup": sweep_speedup,
    "train_step_tokens_per_s": train_step_tokens_per_s,
    "train_peak_mem_bytes": train_peak_mem_bytes,
    "chunked_over_full_peak_mem": chunked_over_full_peak_mem,
    "chunk_tokens_per_s": chunk_tokens_per_s,
}


def check_figures(names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(FIGURES)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise UsageError(f"figure={unknown[0]!r} is not allowed: use one of {', '.join(FIGURES)}")
    return list(dict.fromkeys(names))


def read_results(path: Path) -> dict[str, Any]:
    """The figures already measured (an unreadable file counts as none)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_bench(
    options: BenchOptions, out: str | os.PathLike[str] = DEFAULT_OUT, figures: Sequence[str] | None = None
) -> dict[str, Any]:
    """Measure ``figures`` (default: all) and write each into ``out`` as soon as it is done.

    Figures already in ``out`` that were not asked for stay, so figures can be measured one at a
    time; each record carries its own setup and machine.
    """
    names = check_figures(figures)
    bench = Bench(options)
    path = Path(out)
    results = read_results(path)
    for name in names:
        results[name] = FIGURES[name](bench)
        write_json(path, results)
    return {name: results[name] for name in names}
