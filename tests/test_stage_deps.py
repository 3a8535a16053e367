"""Every stage depends on every project module its script imports (directly or through other modules) and
declares every top-level param its code reads, so `dvc repro` after a code or param change reruns what it should."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] == "acd" and module_file(name) is not None}


def import_closure(script: Path) -> set[Path]:
    """The acd source files a script runs: its imports, theirs, and every enclosing package's __init__."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in imported(todo.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                file = module_file(".".join(parts[:depth]))
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def script_of(stage: dict) -> Path:
    return ROOT / next(word for word in stage["cmd"].split() if word.endswith(".py"))


def covered(file: Path, deps: list[str]) -> bool:
    relative = file.relative_to(ROOT).as_posix()
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_every_stage_depends_on_every_module_its_script_imports() -> None:
    missing = {
        name: sorted(f.relative_to(ROOT).as_posix() for f in import_closure(script_of(stage)) if not covered(f, stage["deps"]))
        for name, stage in stages().items()
    }
    assert not {name: files for name, files in missing.items() if files}
    for name, stage in stages().items():
        assert script_of(stage).relative_to(ROOT).as_posix() in stage["deps"], name


def test_the_closure_sees_imports_through_other_modules() -> None:
    """architectures.py (the final norm) is reached from a generation stage only through loading and model."""
    files = {f.relative_to(SRC).as_posix() for f in import_closure(ROOT / "stages" / "generate.py")}
    assert {"acd/core/architectures.py", "acd/core/loading.py", "acd/__init__.py"} <= files


# The top-level params slice each stage picks (by its script and cmd argument); the test below checks the
# scripts pick no other slice, and that each stage declares every field of its slice.
SLICES = {
    "check_params": "Decoding", "chunk": "ModelName", "train_heads": "ModelSeed", "prompts": "Seed",
    "generate_plain": "Plain", "generate_acd": "Decoding", "generate_layers": "ModelSeed",
    "generation_metrics": "Seed", "generation_metrics_layers": "Seed", "generation_table": None,
    "benchmark_layers": "ModelSeed", "benchmark_acd": "Decoding", "benchmark_report": None,
    "compare_heads_plain": "Plain", "compare_heads_acd": "Decoding", "compare_heads": None, "figures": None,
}


def picked_slices(path: Path) -> set[str]:
    """Names of the dataclasses a file passes to ``pick(params, X)``."""
    return {
        node.args[1].id
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "pick" and len(node.args) == 2
        and isinstance(node.args[1], ast.Name) and node.args[1].id[:1].isupper()
    }


def test_every_stage_declares_every_top_level_param_it_reads() -> None:
    import dataclasses

    from acd.pipeline import generation, params

    classes = {"Plain": generation.Plain, **{name: getattr(params, name)
                                              for name in ("Decoding", "ModelSeed", "ModelName", "Seed")}}
    assert set(SLICES) == set(stages())
    picked: set[str] = set()
    for name, stage in stages().items():
        picked |= picked_slices(script_of(stage)) | {
            cls for file in import_closure(script_of(stage)) for cls in picked_slices(file)}
        if SLICES[name] is None:
            continue
        declared = {p for p in stage.get("params", []) if isinstance(p, str)}
        fields = {field.name for field in dataclasses.fields(classes[SLICES[name]])}
        assert fields <= declared, f"{name} reads {sorted(fields - declared)} without declaring them"
    assert picked == {cls for cls in SLICES.values() if cls}
