"""Named exits: which next-token distributions one pass of the body should score.

Each name stands for a :class:`~acd.core.model.Contrast` the ACD model can compute from the same
hidden states: an exit alone (``amateur=None``) or the configured ACD contrast.

  head<L>   the trained exit head on layer L        lens<L>   the model's lm_head on normed layer L
  original  the pretrained head (lens at the last layer)
  new       the trained head at the last layer (the paper's new expert)
  heads     every trained head                      lenses    the lens at every layer
  all       heads + original: the paper's per-layer sweep (without trained heads: lenses)
  acd       the model's configured contrast (expert vs the amateur at ``layer``, ``alpha``)

Names join with ``+`` (``head12+lens24+acd``): lm-eval's model_args already split on commas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import torch

from acd.core.architectures import num_layers
from acd.errors import UsageError
from acd.core.model import Contrast, Exit, ModelAmateur, check_exit, contrast_logits, run_body

ALLOWED = "head<L>, lens<L>, original, new, heads, lenses, all, acd"


def _names(spec: str | Sequence[str]) -> list[str]:
    parts = spec.split("+") if isinstance(spec, str) else list(spec)
    names = [part.strip() for part in parts if isinstance(part, str) and part.strip()]
    if not names or len(names) != len(parts):
        raise UsageError(f"exits={spec!r} is not allowed: give names joined by '+', each one of {ALLOWED}")
    return names


def _expand(name: str, model: Any) -> list[Exit] | None:
    """The exits a name stands for; None for ``acd``."""
    n_layers = num_layers(model)
    trained = model.acd_heads.exit_layers if model.acd_heads is not None else []
    if name == "acd":
        return None
    if name == "original":
        return [Exit(n_layers, "lens")]
    if name == "new":
        return [Exit(n_layers, "head")]
    if name == "heads":
        if not trained:
            raise UsageError("exits='heads' is not allowed: no trained heads were given (heads=DIR), use lenses")
        return [Exit(layer, "head") for layer in trained]
    if name == "lenses":
        return [Exit(layer, "lens") for layer in range(1, n_layers + 1)]
    if name == "all":
        if not trained:
            return [Exit(layer, "lens") for layer in range(1, n_layers + 1)]
        return [Exit(layer, "head") for layer in trained] + [Exit(n_layers, "lens")]
    try:
        return [Exit.parse(name)]
    except UsageError:
        raise UsageError(f"exits={name!r} is not allowed: use {ALLOWED}") from None


def parse_exits(spec: str | Sequence[str], model: Any) -> dict[str, Contrast]:
    """Ordered ``{name: Contrast}`` for an ACD model; every exit is checked against the model and heads."""
    contrasts: dict[str, Contrast] = {}
    for name in _names(spec):
        exits = _expand(name, model)
        if exits is None:
            if model.acd_contrast.amateur is None:
                raise UsageError("exits='acd' is not allowed without an amateur: give layer=<amateur exit layer>")
            contrasts["acd"] = model.acd_contrast
            continue
        for exit in exits:
            check_exit(num_layers(model), model.acd_heads, exit, "exit")
            contrasts.setdefault(str(exit), Contrast(expert=exit))
    return contrasts


@torch.no_grad()
def score_exits(
    model: Any, contrasts: dict[str, Contrast], inputs: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]], device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every contrast's log-likelihood of each continuation, and whether it is its greedy pick, from ONE body pass.

    ``inputs[i]`` is the token window the model reads (its last ``len(continuations[i])``
    positions predict the continuation). The heads run only at the continuation positions.
    Returns ``[rows, contrasts]`` summed log-likelihoods (float32) and greedy matches (bool).
    """
    rows, width, span = len(inputs), max(map(len, inputs)), max(map(len, continuations))
    ids = torch.zeros(rows, width, dtype=torch.long)
    positions = torch.zeros(rows, span, dtype=torch.long)
    targets = torch.zeros(rows, span, dtype=torch.long)
    valid = torch.zeros(rows, span, dtype=torch.bool)
    for row, (tokens, continuation) in enumerate(zip(inputs, continuations, strict=True)):
        n = len(continuation)
        ids[row, : len(tokens)] = torch.tensor(tokens)
        # position p predicts token p + 1: the continuation is predicted from the last n positions.
        positions[row] = len(tokens) - n + torch.arange(span).clamp(max=n - 1)
        targets[row, :n] = torch.tensor(continuation)
        valid[row, :n] = True
    ids, positions, targets, valid = (tensor.to(device) for tensor in (ids, positions, targets, valid))
    layers = _read_layers(model, contrasts.values())
    body = run_body(model, layers, input_ids=ids, use_cache=False)
    at_targets = _at_positions(body, positions, layers)
    amateur_output = None
    if any(isinstance(contrast.amateur, ModelAmateur) for contrast in contrasts.values()):
        logits = model.acd_amateur_model(input_ids=ids, use_cache=False).logits
        amateur_output = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    totals, greedy = [], []
    for contrast in contrasts.values():
        log_probs = torch.log_softmax(
            contrast_logits(model, model.acd_heads, contrast, at_targets, slice(None), amateur_output).float(), dim=-1
        )
        token = log_probs.gather(-1, targets[..., None]).squeeze(-1)
        totals.append(token.masked_fill(~valid, 0.0).sum(-1))
        greedy.append(((log_probs.argmax(-1) == targets) | ~valid).all(-1))
    return torch.stack(totals, dim=1), torch.stack(greedy, dim=1)


def _read_layers(model: Any, contrasts: Iterable[Contrast]) -> list[int]:
    """The intermediate layers the contrasts read (the last layer's state comes anyway)."""
    last = num_layers(model)
    return sorted({exit.layer for contrast in contrasts for exit in contrast.exits() if exit.layer != last})


def _at_positions(body: Any, positions: torch.Tensor, layers: list[int]) -> SimpleNamespace:
    """The body output's hidden states at ``positions`` ([batch, k]) of ``layers`` (others: None) and the last."""

    def pick(hidden: torch.Tensor) -> torch.Tensor:
        return hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))

    hidden_states = [pick(hidden) if layer in layers else None for layer, hidden in enumerate(body.hidden_states or ())]
    return SimpleNamespace(hidden_states=hidden_states, last_hidden_state=pick(body.last_hidden_state))
