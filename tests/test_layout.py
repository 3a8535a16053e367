"""The architecture holds: `acd.core` (the method) imports no other acd subpackage, and `import acd` is lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import acd

PACKAGE = Path(acd.__file__).parent
SHARED = {"acd", "acd.errors", "acd.io"}  # the foundations every subpackage may use


def acd_imports(path: Path) -> set[str]:
    """Every ``acd...`` module a file imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "acd" or name.startswith("acd.")}


def test_core_imports_only_core_and_the_shared_foundations() -> None:
    outside = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted((PACKAGE / "core").glob("*.py"))
        for name in acd_imports(path)
        if not (name in SHARED or name == "acd.core" or name.startswith("acd.core."))
    }
    assert not outside, f"acd.core must not import other subpackages: {sorted(outside)}"


def test_import_acd_loads_no_submodule_until_its_name_is_used() -> None:
    code = (
        "import sys, acd\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('acd.'))\n"
        "assert not loaded, loaded\n"
        "acd.load\n"
        "assert 'acd.core.loading' in sys.modules and 'acd.pipeline.params' not in sys.modules\n"
        "assert not any(m.startswith(('acd.eval', 'acd.tools', 'acd.reports')) for m in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_public_name_resolves() -> None:
    for name in acd.__all__:
        assert getattr(acd, name) is not None


def test_every_contrast_knob_reaches_the_cli_lm_eval_and_params() -> None:
    """One spec: each ContrastSpec field is an option of `acd generate`, an lm-eval model arg and a params key."""
    import dataclasses
    import inspect

    from acd.core.spec import ContrastSpec
    from acd.eval.lm_eval_model import MODEL_ARGS
    from acd.pipeline.params import Decoding
    from acd.tools.cli import generate

    knobs = set(ContrastSpec.knobs())
    assert knobs <= set(inspect.signature(generate).parameters)
    assert knobs <= set(MODEL_ARGS)
    assert knobs <= {field.name for field in dataclasses.fields(Decoding)}
