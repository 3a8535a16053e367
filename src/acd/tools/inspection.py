"""The numbers behind ``acd inspect``: what every exit predicts, and what ACD changes (paper Fig. 1).

One body pass gives every exit (lens and trained heads) at the inspected positions; the
expert, amateur, plausible set and ACD distribution come from the same library functions
the ACD model uses (:func:`acd.core.model.exit_logits`, :func:`acd.core.contrast.acd_log_probs`,
:func:`acd.core.contrast.plausible_mask`), so what is shown is what decoding sees. Rendering
lives elsewhere (``inspection_report``, ``inspection_figure``); this module only computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from acd.core.architectures import num_layers
from acd.core.contrast import acd_log_probs, compute_dtype, plausible_mask
from acd.pipeline.decoding import empty_prompt, strategy_kwargs
from acd.errors import UsageError
from acd.core.heads import ExitHeads
from acd.core.model import Contrast, Exit, exit_logits, run_body

POSITIONS = ("last", "all")
EXIT_SETS = ("all", "head", "lens")
EXPERT, AMATEUR, ACD = "expert", "amateur", "ACD"


@dataclass(frozen=True)
class Ranked:
    """A distribution's most probable tokens, most probable first."""

    token_ids: tuple[int, ...]
    probs: tuple[float, ...]


@dataclass(frozen=True)
class Step:
    """The next-token distributions after ``input_ids[: position + 1]``.

    ``candidates`` are the expert's and ACD's top tokens (by expert probability), the columns
    of the heat map and bar chart; ``candidate_probs`` gives their probability under every
    exit (keyed by ``str(Exit)``) and under ``expert``, ``amateur`` and ``ACD``.
    """

    position: int
    exits: dict[str, Ranked]
    expert: Ranked
    amateur: Ranked
    acd: Ranked
    plausible_size: int
    plausible: frozenset[int]
    greedy_plain: int
    greedy_acd: int
    candidates: tuple[int, ...]
    candidate_probs: dict[str, tuple[float, ...]]

    @property
    def changed(self) -> bool:
        """ACD picks another token than the plain expert would."""
        return self.greedy_plain != self.greedy_acd


@dataclass(frozen=True)
class Inspection:
    """Every inspected position of one text, with the readable text of each token that appears."""

    contrast: Contrast
    exits: tuple[Exit, ...]
    input_ids: tuple[int, ...]
    steps: tuple[Step, ...]
    tokens: dict[int, str]


@dataclass(frozen=True)
class GenerationInspection:
    """Greedy continuations with and without ACD; ``inspection`` covers each step of the ACD one.

    The texts are decoded whole, so characters split across byte-level tokens read right.
    """

    prompt_ids: tuple[int, ...]
    plain_ids: tuple[int, ...]
    acd_ids: tuple[int, ...]
    inspection: Inspection
    plain_text: str
    acd_text: str

    @property
    def changed_steps(self) -> list[int]:
        """Steps where the token ACD generated is not the one the expert alone would pick there."""
        return [i for i, step in enumerate(self.inspection.steps) if self.acd_ids[i] != step.greedy_plain]


def check_top(top: object) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise UsageError(f"top={top!r} is not allowed: top must be an integer >= 1")
    return top


def check_positions(positions: str) -> str:
    if positions not in POSITIONS:
        raise UsageError(f"positions={positions!r} is not allowed: use one of {', '.join(POSITIONS)}")
    return positions


def check_exit_set(exits: str) -> str:
    if exits not in EXIT_SETS:
        raise UsageError(f"exits={exits!r} is not allowed: use one of {', '.join(EXIT_SETS)}")
    return exits


def exits_of(model: nn.Module, heads: ExitHeads | None, which: str = "all") -> tuple[Exit, ...]:
    """The exits to show, in layer order: the lens at every layer and/or every trained head."""
    check_exit_set(which)
    if which == "head" and heads is None:
        raise UsageError("exits='head' is not allowed without trained heads: give --heads or use exits='lens'")
    lens = [Exit(layer, "lens") for layer in range(1, num_layers(model) + 1)] if which != "head" else []
    trained = [Exit(layer, "head") for layer in heads.exit_layers] if heads is not None and which != "lens" else []
    return tuple(sorted(lens + trained, key=lambda exit: (exit.layer, exit.kind)))


def _ranked(probs: torch.Tensor, top: int) -> Ranked:
    values, ids = probs.topk(min(top, probs.shape[-1]))
    return Ranked(tuple(ids.tolist()), tuple(values.tolist()))


def _candidates(expert: Ranked, acd: Ranked) -> tuple[int, ...]:
    """The expert's top tokens, then ACD's top tokens the expert's list lacks."""
    return expert.token_ids + tuple(t for t in acd.token_ids if t not in expert.token_ids)


@torch.inference_mode()
def inspect_positions(
    model: nn.Module, input_ids: Sequence[int], positions: Sequence[int], top: int = 8, exits: str = "all"
) -> list[Step]:
    """The distributions of every exit, the expert, the amateur and ACD after each of ``positions``.

    ``model`` is an ACD model (:func:`acd.load` with a ``layer``): its contrast says which exits
    are expert and amateur, and with which alpha.
    """
    check_top(top)
    contrast: Contrast = model.acd_contrast
    heads: ExitHeads | None = model.acd_heads
    if contrast.amateur is None:
        raise UsageError("layer=None is not allowed for inspect: give the amateur exit layer")
    if not isinstance(contrast.amateur, Exit):
        raise UsageError(f"amateur={contrast.amateur} is not allowed for inspect: it shows one amateur exit (layer=L)")
    shown_exits = exits_of(model, heads, exits)
    device = model.get_output_embeddings().weight.device
    ids = torch.tensor([list(input_ids)], device=device)
    keep = torch.tensor(list(positions), device=device)
    body = run_body(model, input_ids=ids, use_cache=False)

    expert_logits = exit_logits(model, heads, contrast.expert, body, keep)[0]
    amateur_logits = exit_logits(model, heads, contrast.amateur, body, keep)[0] / contrast.amateur_temperature
    dtype = compute_dtype(expert_logits, amateur_logits)
    expert_lp = torch.log_softmax(expert_logits.to(dtype), dim=-1)
    acd_lp = acd_log_probs(
        expert_logits, amateur_logits, contrast.alpha, contrast.min_candidates, contrast.keep_tail
    )
    plausible = plausible_mask(expert_lp, contrast.alpha, contrast.min_candidates)
    rows = {EXPERT: expert_lp.exp(), AMATEUR: torch.softmax(amateur_logits.to(dtype), dim=-1), ACD: acd_lp.exp()}

    ranked = {name: [_ranked(p, top) for p in probs] for name, probs in rows.items()}
    candidates = [_candidates(e, a) for e, a in zip(ranked[EXPERT], ranked[ACD])]
    at_candidates = {name: [p[list(c)].tolist() for p, c in zip(probs, candidates)] for name, probs in rows.items()}
    for exit in shown_exits:
        probs = torch.softmax(exit_logits(model, heads, exit, body, keep)[0].to(dtype), dim=-1)
        ranked[str(exit)] = [_ranked(p, top) for p in probs]
        at_candidates[str(exit)] = [p[list(c)].tolist() for p, c in zip(probs, candidates)]

    steps = []
    for i, position in enumerate(positions):
        shown = sorted(set(candidates[i]).union(*(r[i].token_ids for r in ranked.values())))
        in_plausible = plausible[i, shown].tolist()
        steps.append(
            Step(
                position=int(position),
                exits={str(exit): ranked[str(exit)][i] for exit in shown_exits},
                expert=ranked[EXPERT][i],
                amateur=ranked[AMATEUR][i],
                acd=ranked[ACD][i],
                plausible_size=int(plausible[i].sum()),
                plausible=frozenset(t for t, keep in zip(shown, in_plausible) if keep),
                greedy_plain=int(expert_lp[i].argmax()),
                greedy_acd=int(acd_lp[i].argmax()),
                candidates=candidates[i],
                candidate_probs={name: tuple(values[i]) for name, values in at_candidates.items()},
            )
        )
    return steps


def token_texts(tokenizer: PreTrainedTokenizerBase, token_ids: set[int]) -> dict[int, str]:
    """Each token's own text (e.g. ``' the'``), decoded alone."""
    return {t: tokenizer.decode([t]) for t in sorted(token_ids)}


def _tokens_of(steps: Sequence[Step], *id_lists: Sequence[int]) -> set[int]:
    ids = {t for ids in id_lists for t in ids}
    for step in steps:
        ids.update(step.candidates, step.expert.token_ids, step.amateur.token_ids, step.acd.token_ids)
        for ranked in step.exits.values():
            ids.update(ranked.token_ids)
    return ids


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    ids = tokenizer(prompt)["input_ids"]
    if not ids:
        raise empty_prompt(prompt)
    return list(ids)


def inspect_prompt(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    top: int = 8,
    positions: str = "last",
    exits: str = "all",
) -> Inspection:
    """Inspect the next token after ``prompt`` (``last``) or after each of its tokens (``all``)."""
    check_top(top)
    check_positions(positions)
    check_exit_set(exits)
    ids = encode_prompt(tokenizer, prompt)
    where = range(len(ids)) if positions == "all" else [len(ids) - 1]
    steps = inspect_positions(model, ids, list(where), top=top, exits=exits)
    return Inspection(
        contrast=model.acd_contrast,
        exits=exits_of(model, model.acd_heads, exits),
        input_ids=tuple(ids),
        steps=tuple(steps),
        tokens=token_texts(tokenizer, _tokens_of(steps, ids)),
    )


@torch.inference_mode()
def greedy_continuation(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], steps: int, acd: bool
) -> list[int]:
    """transformers' own greedy search over the ACD distribution, or over the plain expert."""
    contrast = model.acd_contrast
    device = model.get_output_embeddings().weight.device
    input_ids = torch.tensor([list(ids)], device=device)
    if not acd:
        model.set_contrast(amateur=None)
    try:
        output = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=steps,
            pad_token_id=tokenizer.pad_token_id,
            **strategy_kwargs("greedy"),
        )
    finally:
        model.acd_contrast = contrast
    return output[0, len(ids) :].tolist()


def inspect_generation(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompt: str, steps: int, top: int = 8, exits: str = "all"
) -> GenerationInspection:
    """Greedy-plain and greedy-ACD continuations of ``prompt``, and every step of the ACD one inspected."""
    check_top(top)
    check_exit_set(exits)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"generate={steps!r} is not allowed: the number of steps must be an integer >= 1")
    ids = encode_prompt(tokenizer, prompt)
    plain = greedy_continuation(model, tokenizer, ids, steps, acd=False)
    contrastive = greedy_continuation(model, tokenizer, ids, steps, acd=True)
    full = ids + contrastive
    # Position p predicts token p + 1: one teacher-forced pass sees what each greedy step saw.
    where = list(range(len(ids) - 1, len(full) - 1))
    inspected = inspect_positions(model, full, where, top=top, exits=exits)
    inspection = Inspection(
        contrast=model.acd_contrast,
        exits=exits_of(model, model.acd_heads, exits),
        input_ids=tuple(full),
        steps=tuple(inspected),
        tokens=token_texts(tokenizer, _tokens_of(inspected, full, plain)),
    )
    return GenerationInspection(
        prompt_ids=tuple(ids),
        plain_ids=tuple(plain),
        acd_ids=tuple(contrastive),
        inspection=inspection,
        plain_text=tokenizer.decode(plain),
        acd_text=tokenizer.decode(contrastive),
    )
