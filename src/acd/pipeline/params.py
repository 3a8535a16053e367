"""One schema for params.yaml and CLI options: dataclasses checked before any model is loaded.

Each stage declares the dataclass of the section it reads; :func:`build` checks every key
(unknown keys, types, ``Literal`` choices) and the dataclass's ``__post_init__`` checks
ranges, so a typo fails in a second with one line naming the parameter and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from acd.core.spec import DYNAMIC, ContrastSpec
from acd.errors import UsageError

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def read_params(path: str | os.PathLike[str] = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"params={str(path)!r} does not exist: run from the project root (where params.yaml is)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UsageError(f"params={str(path)!r} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"params={str(path)!r} must be a mapping of parameters")
    check_top_level(data)
    return data


# The stages' sections of params.yaml; the other top-level keys are the fields of :class:`Decoding`.
SECTIONS = ("corpus", "heads", "train", "prompts", "generation", "generation_metrics", "benchmarks")


# How many data-parallel processes the GPU stages start: read by them, declared by check_params alone, so a
# change reruns no stage (their outputs are the bytes of one process).
PROCESSES = "processes"


def processes(params: dict[str, Any]) -> int:
    value = params.get(PROCESSES, 1)
    if type(value) is not int or value < 1:
        raise UsageError(f"processes={value!r} is not allowed: the number of data-parallel processes, an integer >= 1")
    return value


def check_top_level(params: dict[str, Any]) -> None:
    """Refuse a misspelt top-level key: each stage reads only its own keys, so ``alpah: 0.2`` would pass unseen."""
    known = {field.name for field in fields(Decoding)} | set(SECTIONS) | {PROCESSES}
    for key in sorted(set(params) - known, key=str):
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"{key} is not a known parameter: {hint}known top-level keys are {', '.join(sorted(known))}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(value) for value in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` or UsageError; ints pass as floats, nothing else is coerced."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UsageError(f"{where}={value!r} is not allowed: expected {_type_name(tp)}")
    if tp is Any:
        return value
    if origin is Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        raise bad
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _convert(value, arg, where)
            except UsageError:
                continue
        raise bad
    if origin is list:
        if not isinstance(value, list):
            raise bad
        return [_convert(item, args[0], f"{where}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {_convert(k, args[0], where): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return build(tp, value, where)
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise bad
    if isinstance(value, tp):
        return value
    raise bad


def build(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``data``, naming ``where.key`` in every error."""
    prefix = f"{where}." if where else ""
    known = {field.name: field for field in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(
            f"{prefix}{unknown[0]} is not a known parameter: known are {', '.join(sorted(known))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, field in known.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UsageError(f"{prefix}{name} is missing: expected {_type_name(hints[name])}")
    return cls(**kwargs)


def section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """The dataclass for ``params[name]`` (a mapping)."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise UsageError(f"{name} is missing from params.yaml or is not a mapping")
    return build(cls, value, name)


def pick(params: dict[str, Any], cls: type[T]) -> T:
    """The dataclass built from the top-level keys it names (other keys are other stages')."""
    names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    return build(cls, {key: value for key, value in params.items() if key in names})


@dataclass(frozen=True)
class Decoding:
    """The top-level knobs of params.yaml: which model, which expert and amateur, how hard to contrast.

    ``candidate_layers`` is read only with ``layer: dynamic``, ``amateur_model`` only with
    ``amateur: model`` (whose amateur is that model's own output, so it ignores ``layer``).
    """

    model: str
    alpha: float = 0.1
    layer: int | Literal["dynamic"] = 12
    expert: Literal["original", "new"] = "new"
    amateur: Literal["head", "lens", "model"] = "head"
    seed: int = 0
    amateur_temperature: float = 1.0
    keep_tail: bool = True
    amateur_model: str | None = None
    candidate_layers: list[int] = dataclasses.field(default_factory=list)
    min_candidates: int = 1

    def __post_init__(self) -> None:
        self.spec()

    def spec(self) -> ContrastSpec:
        """The contrast these keys set, checked by :class:`ContrastSpec` (its messages are the only ones)."""
        return ContrastSpec(
            layer=self.layer, alpha=self.alpha, expert=self.expert, amateur=self.amateur,
            amateur_temperature=self.amateur_temperature, keep_tail=self.keep_tail,
            amateur_model=self.amateur_model if self.amateur == "model" else None,
            candidate_layers=(tuple(self.candidate_layers) or None) if self.layer == DYNAMIC else None,
            min_candidates=self.min_candidates,
        )


@dataclass(frozen=True)
class ModelName:
    """The top-level ``model`` alone: for stages that need only its tokenizer or config (``chunk``)."""

    model: str


@dataclass(frozen=True)
class ModelSeed:
    """The top-level ``model`` and ``seed``: every stage that loads a model but never contrasts (training, the
    per-exit sweeps of generation and lm-eval)."""

    model: str
    seed: int = 0


@dataclass(frozen=True)
class Seed:
    """Just the top-level ``seed``, for stages that sample but load no model."""

    seed: int = 0
