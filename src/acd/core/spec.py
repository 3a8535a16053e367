"""The contrast a user asks for, checked once: `acd.load`, the lm-eval model, the CLI and params.yaml all build it.

Checks here need no model (a typo fails before minutes of loading); what needs the model's config (a layer out
of range, an untrained head) is checked by :func:`acd.core.model.check_contrast` once the config is read.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

from acd.errors import UsageError

DYNAMIC = "dynamic"  # layer: per token, the candidate exit furthest from the expert (DoLa-style)
EXPERT_KINDS = ("original", "new")
AMATEUR_KINDS = ("head", "lens", "model")


def parse_layer(value: object) -> int | str | None:
    """The amateur exit layer (an integer >= 1) or ``'dynamic'``; digits as text pass (CLI, lm-eval model_args)."""
    if value is None or value == DYNAMIC:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"layer={value!r} is out of range: use an exit layer >= 1 or '{DYNAMIC}'")
    return value


def parse_candidate_layers(value: object) -> tuple[int, ...] | None:
    """Candidate exit layers of ``layer='dynamic'``: a list, one layer, or text joined by ',' or '+'
    (lm-eval's model_args already split on commas, so there ``candidate_layers=2+4+6``)."""
    if value is None:
        return None
    items: list[Any]
    if isinstance(value, str):
        items = [int(p) if p.strip().isdigit() else p for p in value.replace("+", ",").split(",")]
    else:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in items):
        raise UsageError(f"candidate_layers={value!r} is not allowed: give exit layers >= 1, e.g. [2, 4, 6]")
    return tuple(items)


def check_alpha(alpha: object) -> float:
    """Return alpha as a float, or raise UsageError (a ValueError) naming the allowed range."""
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 <= float(alpha) <= 1.0:
        raise UsageError(f"alpha={alpha!r} is not allowed: alpha must be a number in [0, 1]")
    return float(alpha)


def check_min_candidates(min_candidates: object) -> int:
    """Return min_candidates as an int, or raise UsageError (a ValueError) naming the allowed range."""
    if isinstance(min_candidates, bool) or not isinstance(min_candidates, int) or min_candidates < 1:
        raise UsageError(
            f"min_candidates={min_candidates!r} is not allowed: min_candidates must be an integer >= 1"
        )
    return min_candidates


def check_amateur_temperature(temperature: object) -> float:
    """Return the amateur temperature as a float (finite, > 0), or raise UsageError naming the allowed range."""
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not 0.0 < float(temperature) < math.inf:
        raise UsageError(f"amateur_temperature={temperature!r} is not allowed: it must be a finite number > 0")
    return float(temperature)


def _check_kind(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise UsageError(f"{name}={value!r} is not allowed: use one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ContrastSpec:
    """Which expert, which amateur and how hard to contrast; ``layer=None`` is the plain expert.

    ``expert`` defaults (at load time) to ``new`` when the heads hold a final-layer head (the paper), else
    ``original``; ``amateur`` to ``model`` when ``amateur_model`` is given, else ``head`` with heads and
    ``lens`` without. ``layer='dynamic'`` picks per token the exit of ``candidate_layers`` furthest from the
    expert; ``amateur_model`` (a small LM with the expert's tokenizer) is contrastive decoding's amateur
    (Li et al. 2022: ``amateur_temperature=0.5``, ``keep_tail=False``), and ``layer`` is unused then.
    """

    layer: int | Literal["dynamic"] | None = None
    alpha: float = 0.1
    expert: Literal["original", "new"] | None = None
    amateur: Literal["head", "lens", "model"] | None = None
    amateur_temperature: float = 1.0
    keep_tail: bool = True
    amateur_model: str | None = None
    candidate_layers: tuple[int, ...] | None = None
    min_candidates: int = 1

    def __post_init__(self) -> None:
        _check_kind("expert", self.expert, EXPERT_KINDS)
        _check_kind("amateur", self.amateur, AMATEUR_KINDS)
        set_ = object.__setattr__
        set_(self, "alpha", check_alpha(self.alpha))
        set_(self, "amateur_temperature", check_amateur_temperature(self.amateur_temperature))
        set_(self, "min_candidates", check_min_candidates(self.min_candidates))
        if not isinstance(self.keep_tail, bool):
            raise UsageError(f"keep_tail={self.keep_tail!r} is not allowed: use true or false")
        set_(self, "layer", parse_layer(self.layer))
        set_(self, "candidate_layers", parse_candidate_layers(self.candidate_layers))
        if isinstance(self.amateur_model, os.PathLike):
            set_(self, "amateur_model", os.fspath(self.amateur_model))
        if self.amateur is None and self.amateur_model is not None:
            set_(self, "amateur", "model")
        if self.amateur == "model" and self.amateur_model is None:
            raise UsageError("amateur_model is missing: amateur='model' needs a hub id or directory of a small LM")
        if self.amateur_model is not None and self.amateur != "model":
            raise UsageError(
                f"amateur_model={self.amateur_model!r} is not allowed with amateur={self.amateur!r}: "
                "use amateur='model'"
            )
        if self.layer == DYNAMIC and self.amateur == "model":
            raise UsageError("layer='dynamic' is not allowed with amateur='model': it picks among the expert's exits")
        if self.layer == DYNAMIC and not self.candidate_layers:
            raise UsageError("candidate_layers is missing: layer='dynamic' needs candidate exit layers, e.g. [2, 4, 6]")
        if self.candidate_layers and self.layer != DYNAMIC:
            raise UsageError(
                f"candidate_layers={list(self.candidate_layers)} is not allowed with layer={self.layer!r}: "
                "use layer='dynamic'"
            )

    @classmethod
    def from_kwargs(cls, **knobs: Any) -> ContrastSpec:
        """The spec from keyword arguments (``acd.load``, lm-eval model_args), refusing unknown names."""
        unknown = sorted(set(knobs) - set(cls.knobs()))
        if unknown:
            raise UsageError(f"{unknown[0]} is not a contrast setting: use {', '.join(cls.knobs())}")
        return cls(**knobs)

    @classmethod
    def knobs(cls) -> tuple[str, ...]:
        """The field names: what the CLI options, lm-eval model_args and params.yaml must each cover."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def as_kwargs(self) -> dict[str, Any]:
        """The set knobs as plain values (lists, not tuples): for lm-eval's model_args and metrics files."""
        values = {name: getattr(self, name) for name in self.knobs()}
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items() if v is not None}
