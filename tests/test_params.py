"""The params schema: unknown keys, wrong types and bad choices are one clear UsageError each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from acd.errors import UsageError
from acd.pipeline.params import Decoding, build, pick, read_params, section


@dataclass
class Inner:
    size: int = 4


@dataclass
class Example:
    name: str
    rate: float = 0.5
    kind: Literal["a", "b"] = "a"
    layers: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    files: list[str] | None = None


def test_build_converts_and_checks() -> None:
    got = build(Example, {"name": "x", "rate": 1, "layers": [2, 4], "inner": {"size": 8}})
    assert got == Example(name="x", rate=1.0, layers=[2, 4], inner=Inner(8))
    assert isinstance(got.rate, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "rat": 1}, r"^sec\.rat is not a known parameter: known are files, inner, kind, layers, name, rate$"),
        ({"name": "x", "rate": "fast"}, r"^sec\.rate='fast' is not allowed: expected float$"),
        ({"name": "x", "kind": "c"}, r"^sec\.kind='c' is not allowed: expected one of 'a', 'b'$"),
        ({"name": "x", "layers": [2, "4"]}, r"^sec\.layers\[1\]='4' is not allowed: expected int$"),
        ({"name": "x", "inner": {"size": True}}, r"^sec\.inner\.size=True is not allowed: expected int$"),
        ({}, r"^sec\.name is missing: expected str$"),
    ],
)
def test_build_errors_name_the_parameter(data: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build(Example, data, "sec")


def test_decoding_top_level(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("model: gpt2-medium\nalpha: 0.2\nlayer: 8\ncorpus: {x: 1}\n")
    params = read_params(path)
    assert pick(params, Decoding) == Decoding(model="gpt2-medium", alpha=0.2, layer=8)
    with pytest.raises(UsageError, match=r"alpha=1\.2 is not allowed"):
        pick({"model": "m", "alpha": 1.2}, Decoding)
    with pytest.raises(UsageError, match=r"layer=0 is out of range"):
        pick({"model": "m", "layer": 0}, Decoding)
    with pytest.raises(UsageError, match=r"expert='best' is not allowed: expected one of 'original', 'new'"):
        pick({"model": "m", "expert": "best"}, Decoding)
    with pytest.raises(UsageError, match=r"^missing is missing from params.yaml"):
        section(params, "missing", Inner)


def test_misspelt_top_level_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("model: gpt2-medium\nalpah: 0.2\n")
    with pytest.raises(UsageError, match=r"^alpah is not a known parameter: did you mean 'alpha'\? known top-level keys"):
        read_params(path)
    root = Path(__file__).resolve().parents[1]
    for shipped in (root / "params.yaml", root / "src/acd/data/demo/params.yaml"):  # the params we ship pass
        assert read_params(shipped)["alpha"] == 0.1


def test_read_params_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"does not exist"):
        read_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(UsageError, match=r"is not valid YAML"):
        read_params(tmp_path / "bad.yaml")
