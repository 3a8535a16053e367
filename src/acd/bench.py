"""``acd bench``: what ACD costs over the plain model, measured side by side in one process.

Each figure runs its variants interleaved, repetition by repetition (the order flips every
repetition), and reports the median of the per-repetition ratios, so a slow spell on a shared
machine slows both sides of a ratio alike. :data:`FIGURES` maps a figure's name to the function
that measures it; the results, keyed by name, go to ``metrics/bench.json``, each with its goal,
the timings behind it, its setup and the machine it ran on. A figure is one more entry there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import statistics
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

from acd.architectures import num_layers
from acd.contrast import plausible_mask
from acd.errors import UsageError
from acd.heads import ExitHeads
from acd.io import write_json
from acd.loading import DTYPES, load_pretrained, resolve_dtype
from acd.model import AutoContrastiveMixin, Contrast, Exit, make_auto_contrastive

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
    """The sizes the figures run (issue 7); ``QUICK`` keeps the model and shrinks the sequences."""

    prompt_tokens: int = 32
    new_tokens: int = 64
    greedy_batches: tuple[int, ...] = (1, 8)
    score_tokens: int = 512
    score_batch: int = 8
    reps: int = 3


FULL = Workload()
QUICK = Workload(new_tokens=8, score_tokens=64, reps=2)


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

    @property
    def workload(self) -> Workload:
        base = QUICK if self.quick else FULL
        return base if self.reps is None else replace(base, reps=self.reps)

    @property
    def resolved_device(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


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
        options = self.options
        torch.manual_seed(options.seed)
        if options.model in RANDOM_MODELS:
            base = AutoModelForCausalLM.from_config(RANDOM_MODELS[options.model]())
            base.to(device=self.device, dtype=resolve_dtype(options.dtype)).eval().requires_grad_(False)
        else:
            base, _ = load_pretrained(options.model, device=self.device, dtype=options.dtype)
        # Every run generates exactly the tokens asked for: an early end-of-text would time less work.
        base.generation_config.eos_token_id = None
        n_layers = num_layers(base)
        if not 1 <= self.layer(n_layers) < n_layers:
            raise UsageError(f"layer={options.layer} is out of range: allowed 1..{n_layers - 1} for this model")
        heads = ExitHeads.for_model(base, [self.layer(n_layers), n_layers], base_model=options.model, seed=options.seed)
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

    def setup(self) -> dict[str, Any]:
        n_layers = num_layers(self.model)
        return {
            "model": self.options.model,
            "dtype": self.options.dtype,
            "layers": n_layers,
            "amateur_layer": self.layer(n_layers),
            "head": f"expert = new exit head at layer {n_layers}, amateur = exit head at layer "
            f"{self.layer(n_layers)} (random ExitHeads, std 0.02)",
            "lens": f"expert = original lm_head, amateur = lm_head on final_norm(hidden_states[{self.layer(n_layers)}])",
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
            raise RuntimeError(f"generation stopped after {output.shape[1] - input_ids.shape[1]} of {new_tokens} tokens")
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


def summary(name: str, record: dict[str, Any]) -> str:
    """One line per figure for the terminal: value, goal, and each case's ratio where it has one."""
    goals = []
    if "goal_max" in record:
        goals.append(f"<= {record['goal_max']}")
    if "goal_min" in record:
        goals.append(f">= {record['goal_min']}")
    verdict = f" (goal {' and '.join(goals)}: {'met' if record['meets_goal'] else 'NOT met'})" if goals else ""
    ratios = ", ".join(f"{case} {values['ratio']}" for case, values in record.get("cases", {}).items() if "ratio" in values)
    return f"{name}: {record['value']}{verdict}" + (f"; {ratios}" if ratios else "")


# name -> function(bench) -> record. The other figures of issue 7 (sweep_speedup,
# train_step_tokens_per_s, train_peak_mem_bytes, chunked_over_full_peak_mem, chunk_tokens_per_s)
# are added here once the code they measure exists.
FIGURES: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "acd_greedy_over_plain": acd_greedy_over_plain,
    "acd_score_over_plain": acd_score_over_plain,
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
