"""LAMBADA, WikiText-2 and the inverse-scaling tasks through lm-evaluation-harness, per exit and with ACD.

lm-eval does all the scoring (``simple_evaluate``); this module picks the model (the registered
``acd`` model, :mod:`acd.eval.lm_eval_model`), loads the tasks once (:mod:`acd.eval.tasks`), runs lm-eval
once per exit (one model pass serves all of them) and shapes the results for metrics files and
plots. Results are ``{task: {exit: {metric: value}}}``; exits are named as in :mod:`acd.core.exits`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from acd.errors import UsageError
from acd.core.model import Exit
from acd.pipeline.params import Decoding, ModelSeed
from acd.eval.tasks import load_tasks, task_manager

# The paper's benchmarks (§4.2.2) and the Inverse Scaling Prize tasks lm-eval 0.4 ships.
GROUPS = {
    "lambada": ["lambada_openai"],
    "wikitext": ["wikitext"],
    "inverse_scaling": [
        "inverse_scaling_hindsight_neglect_10shot", "inverse_scaling_into_the_unknown", "inverse_scaling_memo_trap",
        "inverse_scaling_modus_tollens", "inverse_scaling_neqa", "inverse_scaling_pattern_matching_suppression",
        "inverse_scaling_quote_repetition", "inverse_scaling_redefine_math", "inverse_scaling_repetitive_algebra",
        "inverse_scaling_sig_figs", "inverse_scaling_winobias_antistereotype",
    ],
}


@dataclass(frozen=True)
class Benchmarks:
    """params.yaml ``benchmarks``: which lm-eval tasks per group, on how many documents, how the model runs."""

    tasks: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in GROUPS.items()})
    heads: str | None = "models/heads"  # trained exit heads (train_heads output); null: lens exits only
    exits: str = "all"  # the per-layer sweep: every trained head + the original head (acd.core.exits)
    limit: int | float | None = None  # documents per task (a fraction when < 1); null: all (the paper)
    num_fewshot: int | None = 0  # the paper: zero-shot; null: each task's own default
    batch_size: int = 8
    bootstrap_iters: int = 1000  # lm-eval's bootstrap for perplexity stderr; 0: none
    include_path: list[str] = field(default_factory=list)  # directories of task YAMLs (local data)
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        for group, names in self.tasks.items():
            if not names:
                raise UsageError(f"benchmarks.tasks.{group}=[] is not allowed: list at least one lm-eval task")
        if self.limit is not None and not self.limit > 0:
            raise UsageError(f"benchmarks.limit={self.limit} is not allowed: a number of documents > 0, or null")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise UsageError(f"benchmarks.num_fewshot={self.num_fewshot} is not allowed: an integer >= 0, or null")
        if self.batch_size < 1:
            raise UsageError(f"benchmarks.batch_size={self.batch_size} is not allowed: an integer >= 1")
        if self.bootstrap_iters < 0:
            raise UsageError(f"benchmarks.bootstrap_iters={self.bootstrap_iters} is not allowed: an integer >= 0")

    def task_names(self, group: str) -> list[str]:
        if group not in self.tasks:
            raise UsageError(f"group={group!r} is not in benchmarks.tasks: known groups are {', '.join(self.tasks)}")
        return self.tasks[group]


def task_metrics(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """lm-eval's ``{task: {"acc,none": x, "alias": ...}}`` as ``{task: {"acc": x}}`` (numbers only)."""
    shaped: dict[str, dict[str, float]] = {}
    for task, values in results.items():
        metrics = {}
        for key, value in values.items():
            if "," not in key or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric, filter_name = key.split(",", 1)
            metrics[metric if filter_name == "none" else f"{metric}_{filter_name}"] = float(value)
        shaped[task] = metrics
    return shaped


def evaluate_tasks(
    model_args: dict[str, Any],
    tasks: Sequence[str],
    *,
    limit: int | float | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
    bootstrap_iters: int = 1000,
    include_path: Iterable[str] = (),
    include_defaults: bool = True,
    device: str | None = None,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Run lm-eval on the registered ``acd`` model: ``{"model": info, "results": {task: {exit: metrics}}}``.

    Task names are checked and datasets loaded before the model, so a typo or an unreachable
    dataset fails in seconds. With ``exits`` in ``model_args`` the body runs once per batch for
    all exits; the further lm-eval runs replay the kept answers. Under several processes every one
    scores its share, and only the first (lm-eval reports on local rank 0) gets the document: None elsewhere.
    """
    from lm_eval import simple_evaluate
    from lm_eval.api.registry import get_model

    import acd.eval.lm_eval_model  # noqa: F401  (registers the "acd" model)

    with task_manager(include_path, include_defaults=include_defaults, needed=tasks) as manager:
        loaded = load_tasks(manager, tasks)
        lm = get_model("acd").create_from_arg_obj({"batch_size": batch_size, "device": device, **model_args})
        by_exit = {}
        for index, name in enumerate(lm.exit_names):
            output = simple_evaluate(
                model=lm if index == 0 else lm.replay(name), tasks=loaded, num_fewshot=num_fewshot, limit=limit,
                bootstrap_iters=bootstrap_iters, log_samples=False, task_manager=manager,
                random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
            )
            if output is None:  # not the reporting process; the replays need no other process
                return None
            by_exit[name] = task_metrics(output["results"])
    results = {task: {name: by_exit[name][task] for name in by_exit} for task in by_exit[lm.exit_names[0]]}
    return {"model": lm.get_model_info(), "results": results}


def _settings(bench: Benchmarks, group: str) -> dict[str, Any]:
    return {"group": group, "tasks": bench.task_names(group), "limit": bench.limit, "num_fewshot": bench.num_fewshot,
            "batch_size": bench.batch_size, "heads": bench.heads}


def _run(bench: Benchmarks, group: str, model_args: dict[str, Any], seed: int) -> dict[str, Any] | None:
    args = {**model_args, "heads": bench.heads, "dtype": bench.dtype}
    document = evaluate_tasks(
        args, bench.task_names(group), limit=bench.limit, num_fewshot=bench.num_fewshot, batch_size=bench.batch_size,
        bootstrap_iters=bench.bootstrap_iters, include_path=bench.include_path, device=bench.device, seed=seed,
    )
    return None if document is None else {**document, "settings": _settings(bench, group)}


def sweep(group: str, base: ModelSeed, bench: Benchmarks) -> dict[str, Any] | None:
    """Every exit of ``bench.exits`` alone on the group's tasks, from one body pass per batch."""
    return _run(bench, group, {"pretrained": base.model, "exits": bench.exits}, base.seed)


def contrast(group: str, decoding: Decoding, bench: Benchmarks) -> dict[str, Any] | None:
    """The ACD model (expert vs the amateur at ``layer``, ``alpha``) on the group's tasks: HFLM over it."""
    return _run(bench, group, {"pretrained": decoding.model, **decoding.spec().as_kwargs()}, decoding.seed)


# ---- plot data: one row per exit, metrics averaged over the group's tasks -----------------

def exit_point(name: str, model_info: dict[str, Any]) -> tuple[str, int]:
    """(kind, layer) of an exit name; ACD sits at its expert's layer."""
    if name == "acd":
        return "acd", Exit.parse(model_info["acd"]["expert"]).layer
    exit = Exit.parse(name)
    return exit.kind, exit.layer


def plot_rows(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Rows ``{exit, layer, <metric>: mean over the group's tasks}`` for exits of ``kind``, by layer."""
    results = document["results"]
    exits = sorted(
        {name for by_exit in results.values() for name in by_exit if exit_point(name, document["model"])[0] == kind},
        key=lambda name: exit_point(name, document["model"])[1],
    )
    rows = []
    for name in exits:
        per_task = [results[task][name] for task in results]
        shared = set.intersection(*(set(metrics) for metrics in per_task))
        row: dict[str, Any] = {"exit": name, "layer": exit_point(name, document["model"])[1]}
        for metric in sorted(m for m in shared if "stderr" not in m):
            row[metric] = math.fsum(metrics[metric] for metrics in per_task) / len(per_task)
        rows.append(row)
    return rows
