"""Train exit heads on a frozen base model (paper App. A), as one plain loop.

Every step: the frozen base runs once per micro-batch under ``torch.no_grad()``; each exit head
reads ``final_norm(hidden_states[L])`` and the loss is the sum over heads of the causal-LM
cross-entropy. Logits are never made for a whole micro-batch of every head at once: each
head's loss is computed (and back-propagated) ``loss_chunk`` positions at a time, which is exact
because the hidden states need no gradient. AdamW with linear decay; gradient accumulation up to
``batch_size`` blocks; data-parallel under ``torchrun``/``accelerate launch`` (gradients averaged
with ``all_reduce`` after accumulation, as DDP does). Checkpoints every ``checkpoint_every``
steps hold everything a restart needs, so a killed run ends with the same heads as one that was
never stopped.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from acd.core.architectures import num_layers
from acd.pipeline.chunking import Blocks, check_tokenizer, load_blocks
from acd.errors import UsageError
from acd.core.heads import ExitHeads
from acd.io import atomic_dir, atomic_path, write_json, write_text
from acd.core.loading import load_config, load_pretrained
from acd.core.model import Exit, hidden_at, project, run_body
from acd.pipeline.world import World, init_world

CHECKPOINT_NAME = "checkpoint"  # checkpoint-<step>.pt
RESUME_ONLY = ("checkpoint_every", "keep_checkpoints")  # knobs a resumed run may change


@dataclass(frozen=True)
class TrainParams:
    """params.yaml ``train``: the paper's recipe (App. A) plus the knobs that fit it to a machine."""

    exit_layers: list[int] = field(default_factory=lambda: list(range(2, 25, 2)))
    init: Literal["normal", "copy"] = "normal"  # normal: std 0.02 as the authors; copy: start from lm_head
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0  # transformers Trainer's default; null: no clipping
    batch_size: int = 64  # blocks per optimiser step, over all processes
    micro_batch_size: int = 8  # blocks per forward pass; gradients accumulate up to batch_size
    epochs: int = 3
    max_steps: int | None = None  # cap on optimiser steps (the schedule decays over the capped run)
    loss_chunk: int | None = 4096  # positions per loss chunk; null: full logits of every head (benchmark only)
    checkpoint_every: int = 500
    keep_checkpoints: int = 1  # checkpoints left on disk (GPT2-Medium's 12 heads + AdamW moments: ~7.5 GB each)
    log_every: int = 10

    def __post_init__(self) -> None:
        if not self.exit_layers or any(layer < 1 for layer in self.exit_layers):
            raise UsageError(f"train.exit_layers={self.exit_layers} is not allowed: layers are 1..n_layers")
        for name in ("batch_size", "micro_batch_size", "epochs", "checkpoint_every", "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"train.{name}={getattr(self, name)} is not allowed: it must be >= 1")
        for name in ("max_steps", "loss_chunk"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"train.{name}={getattr(self, name)} is not allowed: it must be >= 1 or null")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise UsageError(f"train.lr={self.lr}, weight_decay={self.weight_decay}, warmup_steps="
                             f"{self.warmup_steps} are not allowed: lr > 0, the others >= 0")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise UsageError(f"train.max_grad_norm={self.max_grad_norm} is not allowed: it must be > 0 or null")
        if self.batch_size % self.micro_batch_size:
            raise UsageError(f"train.batch_size={self.batch_size} is not allowed: it must be a multiple of "
                             f"train.micro_batch_size={self.micro_batch_size}")


def autocast(device: str) -> torch.autocast:
    """bfloat16 on GPU; float32 on CPU (bf16 matmuls there are slow and less exact)."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda")


# --- the loss ----------------------------------------------------------------------------------


def exit_states(model: nn.Module, tokens: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
    """``final_norm(hidden_states[L])`` at every position but the last (it has no target), no grad."""
    with torch.no_grad(), autocast(str(tokens.device)):
        body = run_body(model, input_ids=tokens)
        return {layer: hidden_at(model, body, layer, slice(None, -1)).flatten(0, 1) for layer in layers}


def head_loss(
    head: nn.Module, states: torch.Tensor, targets: torch.Tensor, chunk: int, backward_scale: float | None = None
) -> torch.Tensor:
    """Summed cross-entropy of ``head`` over flat positions, ``chunk`` at a time.

    With ``backward_scale`` each chunk's loss times it is back-propagated at once, so only one
    chunk of logits is alive at any moment; the states carry no graph, so this is exact.
    """
    total = torch.zeros((), device=states.device)
    for start in range(0, len(targets), chunk):
        with autocast(str(states.device)):
            logits = project(head, states[start:start + chunk])
        loss = F.cross_entropy(logits.float(), targets[start:start + chunk], reduction="sum")
        if backward_scale is not None:
            (loss * backward_scale).backward()
        total += loss.detach()
    return total


def accumulate(
    model: nn.Module, heads: ExitHeads, tokens: torch.Tensor, loss_chunk: int | None, scale: float
) -> torch.Tensor:
    """Add ``scale`` × d(sum over heads of summed CE)/d(heads) to the grads; return each head's summed CE."""
    states = exit_states(model, tokens, heads.exit_layers)
    targets = tokens[:, 1:].flatten()
    if loss_chunk is not None:
        return torch.stack([head_loss(heads[layer], states[layer], targets, loss_chunk, scale)
                            for layer in heads.exit_layers])
    # Full logits of every head at once: what the chunked loss avoids (kept to measure the difference).
    with autocast(str(tokens.device)):
        logits = [project(heads[layer], states[layer]) for layer in heads.exit_layers]
    losses = torch.stack([F.cross_entropy(each.float(), targets, reduction="sum") for each in logits])
    (losses.sum() * scale).backward()
    return losses.detach()


def average_gradients(parameters: list[nn.Parameter], world: World) -> None:
    """Mean of the gradients over processes: the all-reduce DDP does, once per optimiser step."""
    if world.size == 1:
        return
    for parameter in parameters:
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad /= world.size


def train_step(
    model: nn.Module,
    heads: ExitHeads,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[torch.Tensor],
    loss_chunk: int | None,
    world: World = World(),
    max_grad_norm: float | None = None,
    forward_backward: AbstractContextManager[Any] | None = None,
) -> torch.Tensor:
    """One optimiser step over this process's share of a batch; returns each head's mean CE (over processes).

    ``forward_backward`` is entered around the forward and backward passes alone (``acd bench``
    measures their peak memory there, apart from the optimiser's).
    """
    n_targets = sum(batch.shape[0] * (batch.shape[1] - 1) for batch in micro_batches)
    with forward_backward or contextlib.nullcontext():
        losses = sum(accumulate(model, heads, batch, loss_chunk, 1.0 / n_targets) for batch in micro_batches)
    losses = losses / n_targets
    parameters = [parameter for parameter in heads.parameters() if parameter.grad is not None]
    average_gradients(parameters, world)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if world.size > 1:
        dist.all_reduce(losses, op=dist.ReduceOp.SUM)
        losses /= world.size
    return losses


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


# --- data --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def epoch_order(n_blocks: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled block order of one epoch: a pure function of (seed, epoch), so a resume sees the same.

    Computed once per epoch (every step of the epoch reads the cached permutation); read-only.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_blocks)
    order.flags.writeable = False
    return order


def step_batches(
    blocks: np.ndarray, step: int, params: TrainParams, seed: int, world: World, device: str
) -> list[torch.Tensor]:
    """This process's micro-batches of global step ``step``."""
    steps_per_epoch = len(blocks) // params.batch_size
    epoch, offset = divmod(step, steps_per_epoch)
    batch = epoch_order(len(blocks), seed, epoch)[offset * params.batch_size:(offset + 1) * params.batch_size]
    share = params.batch_size // world.size
    mine = np.sort(batch[world.rank * share:(world.rank + 1) * share])
    return [torch.from_numpy(blocks[mine[start:start + params.micro_batch_size]].astype(np.int64)).to(device)
            for start in range(0, share, params.micro_batch_size)]


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    model: nn.Module, heads: ExitHeads, blocks: np.ndarray, micro_batch_size: int, loss_chunk: int | None,
    world: World = World(),
) -> dict[str, dict[str, float]]:
    """Validation loss and perplexity of every exit head and of the original lm_head (``lens<n_layers>``)."""
    n_layers = num_layers(model)
    exits = {str(Exit(layer, "head")): (layer, heads[layer]) for layer in heads.exit_layers}
    exits[str(Exit(n_layers, "lens"))] = (n_layers, model.get_output_embeddings())
    device = next(heads.parameters()).device
    sums = torch.zeros(len(exits) + 1, dtype=torch.float64, device=device)  # last: target count
    mine = range(world.rank, len(blocks), world.size)
    with torch.no_grad():
        for start in range(0, len(mine), micro_batch_size):
            tokens = torch.from_numpy(blocks[list(mine[start:start + micro_batch_size])].astype(np.int64)).to(device)
            states = exit_states(model, tokens, sorted({layer for layer, _ in exits.values()}))
            targets = tokens[:, 1:].flatten()
            chunk = loss_chunk or len(targets)
            for index, (layer, head) in enumerate(exits.values()):
                sums[index] += head_loss(head, states[layer], targets, chunk).double()
            sums[-1] += len(targets)
    if world.size > 1:
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    results = {}
    for index, name in enumerate(exits):
        loss = (sums[index] / sums[-1]).item()
        results[name] = {"val_loss": loss, "val_perplexity": math.exp(min(loss, 700.0))}
    return results


# --- checkpoints and logs ----------------------------------------------------------------------


def checkpoint_files(directory: Path) -> list[Path]:
    """The checkpoints in ``directory``, oldest first (named by step)."""
    return sorted(directory.glob(f"{CHECKPOINT_NAME}-*.pt")) if directory.is_dir() else []


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write the step's checkpoint atomically, then delete all but the ``keep`` newest."""
    path = directory / f"{CHECKPOINT_NAME}-{step:09d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in checkpoint_files(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(directory: Path, fingerprint: dict[str, Any], device: str) -> dict[str, Any] | None:
    """The newest checkpoint of this very run (same fingerprint), or None to start afresh.

    ``weights_only``: a checkpoint holds tensors and plain containers only, so loading one runs no pickled code.
    """
    for path in reversed(checkpoint_files(directory)):
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("fingerprint") == fingerprint:
            return state
    return None


def rng_state() -> dict[str, Any]:
    """torch's RNG streams (the data order is a pure function of seed and epoch; numpy's global RNG is unused)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def loss_csv(rows: list[dict[str, float]], columns: list[str]) -> str:
    """The loss log for ``dvc plots``: step, lr, one column per exit head, and their sum (the training loss)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["step", "lr", *columns, "total"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})
    return buffer.getvalue()


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Outputs:
    """Where a training run writes: the heads, the metrics, the loss log, and its checkpoints."""

    heads: Path = Path("models/heads")
    metrics: Path = Path("metrics/train_heads.json")
    loss_log: Path = Path("metrics/train_loss.csv")
    checkpoints: Path = Path("checkpoints/train_heads")


def check_setup(params: TrainParams, blocks: Blocks, model_name: str, world_size: int) -> None:
    """Every user mistake that can be seen before the model's weights are loaded."""
    config = load_config(model_name)
    n_layers = config.num_hidden_layers
    bad = [layer for layer in params.exit_layers if not 1 <= layer <= n_layers]
    if bad:
        raise UsageError(f"train.exit_layers={params.exit_layers} is not allowed: layer {bad[0]} is outside "
                         f"1..{n_layers} of model={model_name!r}")
    context = getattr(config, "max_position_embeddings", None)
    block_size = blocks.manifest["block_size"]
    if context is not None and block_size > context:
        raise UsageError(f"corpus.block_size={block_size} (of the blocks) is not allowed: model={model_name!r} "
                         f"reads at most {context} positions; rerun the chunk stage")
    if params.batch_size % (params.micro_batch_size * world_size):
        raise UsageError(f"train.batch_size={params.batch_size} is not allowed with {world_size} processes: it must "
                         f"be a multiple of micro_batch_size × processes ({params.micro_batch_size} × {world_size})")
    if len(blocks.val) == 0:
        raise UsageError("corpus.val_blocks=0 is not allowed for train_heads: it reports every head's validation "
                         "loss; rerun the chunk stage with corpus.val_blocks >= 1")
    if len(blocks.train) < params.batch_size:
        raise UsageError(f"train.batch_size={params.batch_size} is not allowed: the blocks hold only "
                         f"{len(blocks.train)} training blocks, fewer than one batch; chunk more documents "
                         "(corpus.n_documents) or lower train.batch_size")


def train_heads(
    model: nn.Module,
    tokenizer: Any,
    model_name: str,
    blocks: Blocks,
    params: TrainParams,
    seed: int,
    outputs: Outputs,
    world: World = World(),
    stop_after: int | None = None,
) -> dict[str, Any] | None:
    """Train exit heads on ``blocks``; write heads, metrics and loss log (main process) and return the metrics.

    ``stop_after`` ends the run after that many steps, as a kill would, with a checkpoint
    written (for tests of resuming); the return value is then None and no output is written.
    """
    check_tokenizer(blocks, tokenizer, model_name)
    steps_per_epoch = len(blocks.train) // params.batch_size
    total_steps = params.epochs * steps_per_epoch
    if params.max_steps is not None:
        total_steps = min(total_steps, params.max_steps)
    heads = ExitHeads.for_model(model, params.exit_layers, base_model=model_name, init=params.init, seed=seed)
    heads.to(world.device)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(params.warmup_steps, total_steps))
    fingerprint = {"model": model_name, "seed": seed, "blocks": blocks.manifest["sha256"],
                   "params": {k: v for k, v in asdict(params).items() if k not in RESUME_ONLY}}
    state = load_checkpoint(outputs.checkpoints, fingerprint, world.device)
    step, log_rows, window = 0, [], []  # window: per-step losses since the last log row
    if state is not None:
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step, log_rows, window = state["step"], state["log"], state["window"]
        if world.main:
            tqdm.write(f"train_heads: resuming from step {step} of {total_steps} ({outputs.checkpoints})")

    def checkpoint() -> None:
        if world.main:
            save_checkpoint(outputs.checkpoints, step, {
                "fingerprint": fingerprint, "step": step, "heads": heads.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
                "log": log_rows, "window": window,
            }, params.keep_checkpoints)
        if world.size > 1:
            dist.barrier()

    columns = [str(Exit(layer, "head")) for layer in heads.exit_layers]
    tokens_per_step = params.batch_size * (blocks.manifest["block_size"] - 1)
    progress = tqdm(total=total_steps, initial=step, unit="step", desc="train_heads", disable=not world.main,
                    dynamic_ncols=True)
    started = time.perf_counter()
    first_step = step
    while step < total_steps:
        lr = scheduler.get_last_lr()[0]
        batches = step_batches(blocks.train, step, params, seed, world, world.device)
        losses = train_step(model, heads, optimizer, batches, params.loss_chunk, world, params.max_grad_norm)
        scheduler.step()
        step += 1
        window.append(losses.cpu())
        if step % params.log_every == 0 or step == total_steps:
            mean = torch.stack(window).mean(0).tolist()
            log_rows.append({"step": step, "lr": lr, **dict(zip(columns, mean)), "total": sum(mean)})
            window = []
            rate = (step - first_step) * tokens_per_step / (time.perf_counter() - started)
            progress.set_postfix({**{name: f"{value:.2f}" for name, value in zip(columns, mean)},
                                  "tok/s": f"{rate:,.0f}"})
        progress.update(1)
        if step % params.checkpoint_every == 0 or step == stop_after:
            checkpoint()
        if step == stop_after:
            progress.close()
            return None
    progress.close()

    val = evaluate(model, heads, blocks.val, params.micro_batch_size, params.loss_chunk, world)
    metrics = {
        "exits": val,
        "val_blocks": len(blocks.val),
        "train": {"steps": total_steps, "tokens": total_steps * tokens_per_step, "processes": world.size,
                  "final_loss": log_rows[-1] if log_rows else {}},
    }
    if world.main:
        training = {"params": asdict(params), "seed": seed, "steps": total_steps,
                    "blocks_sha256": blocks.manifest["sha256"], "tokenizer": blocks.manifest["tokenizer"]}
        with atomic_dir(outputs.heads) as tmp:
            heads.save(tmp, metadata={"training": training})
        write_json(outputs.metrics, metrics)
        write_text(outputs.loss_log, loss_csv(log_rows, columns))
        shutil.rmtree(outputs.checkpoints, ignore_errors=True)
    if world.size > 1:
        dist.barrier()
    return metrics


def write_imported(heads: ExitHeads, source: str, checked: list[str], outputs: Outputs) -> dict[str, Any]:
    """Released heads as this stage's outputs: the heads, metrics naming the source, a loss log with no steps."""
    metrics = {"imported_from": source, "exit_layers": heads.exit_layers, "base_tensors_checked": checked}
    with atomic_dir(outputs.heads) as tmp:
        heads.save(tmp, metadata={"imported_from": source, "base_tensors_checked": checked})
    write_json(outputs.metrics, metrics)
    write_text(outputs.loss_log, loss_csv([], [str(Exit(layer, "head")) for layer in heads.exit_layers]))
    return metrics


def run_from_params(params_file: str | os.PathLike[str] = "params.yaml", blocks_dir: str = "data/blocks",
                    outputs: Outputs = Outputs()) -> dict[str, Any] | None:
    """The ``train_heads`` stage: read params.yaml (``model``, ``seed``, ``train``, ``heads``), train or import."""
    from acd.pipeline.heads_source import heads_params, import_heads
    from acd.pipeline.params import ModelSeed, pick, processes, read_params, section

    raw = read_params(params_file)
    top, params, source = pick(raw, ModelSeed), section(raw, "train", TrainParams), heads_params(raw)
    if source.imported:  # released heads: no blocks, no training
        heads, checked = import_heads(source.source, top.model)
        return write_imported(heads, source.source, checked, outputs)
    world = init_world(processes=processes(raw))
    try:
        blocks = load_blocks(blocks_dir)
        check_setup(params, blocks, top.model, world.size)
        model, tokenizer = load_pretrained(top.model, device=world.device)
        return train_heads(model, tokenizer, top.model, blocks, params, top.seed, outputs, world)
    finally:
        if world.size > 1 and dist.is_initialized():
            dist.destroy_process_group()
