"""The repository root is the users' DVC project: `dvc dag`, `dvc repro --dry` and an offline `dvc repro` work there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}


def run_dvc(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DVC, *args], cwd=directory, env=OFFLINE, capture_output=True, text=True, timeout=300)


def stage_names() -> list[str]:
    listed = run_dvc(ROOT, "stage", "list", "--name-only")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def test_root_is_a_dvc_project_whose_dag_and_dry_run_list_every_stage() -> None:
    names = stage_names()
    assert {"chunk", "train_heads", "generate_acd@greedy", "compare_heads"} <= set(names)
    dag = run_dvc(ROOT, "dag", "--md")
    assert dag.returncode == 0, dag.stderr
    assert all(name in dag.stdout for name in names)
    # --force: DVC's --dry hashes the deps of stages whose inputs do not exist yet (treeverse/dvc#9818)
    dry = run_dvc(ROOT, "repro", "--dry", "--force")
    assert dry.returncode == 0, dry.stderr
    assert sorted(re.findall(r"Running stage '([^']+)'", dry.stdout)) == sorted(names)


def test_offline_repro_at_the_root_stops_in_one_line_naming_the_param_and_the_demo(tmp_path: Path) -> None:
    """No hub: the first stage that loads a model refuses with one `error:` line, no traceback, and no output."""
    project = tmp_path / "project"
    keep = ("dvc.yaml", "params.yaml", "stages", "src", ".dvc", ".dvcignore")
    project.mkdir()
    for name in keep:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache",
                                                                                   "*.egg-info"))
        else:
            shutil.copy2(source, project / name)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    repro = run_dvc(project, "repro")
    output = repro.stdout + repro.stderr
    assert repro.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model='gpt2-medium'" in errors[0] and "`acd demo`" in errors[0], output
    assert "Traceback" not in output
    # Only check_params ran (every param is valid); chunk failed before writing anything.
    assert [path.name for path in (project / "data").iterdir()] == ["params_checked"]
