"""Named exits: which next-token distributions one pass of the body should score.

Each name stands for a :class:`~acd.model.Contrast` the ACD model can compute from the same
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

import re
from collections.abc import Sequence
from typing import Any

from acd.architectures import num_layers
from acd.errors import UsageError
from acd.model import Contrast, Exit, check_exit

ALLOWED = "head<L>, lens<L>, original, new, heads, lenses, all, acd"
_SINGLE = re.compile(r"(head|lens)(\d+)")


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
    match = _SINGLE.fullmatch(name)
    if match is None:
        raise UsageError(f"exits={name!r} is not allowed: use {ALLOWED}")
    return [Exit(int(match.group(2)), match.group(1))]


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
