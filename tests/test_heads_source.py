"""heads.source: released heads replace training through the real chunk and train_heads stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import acd
from acd.pipeline.chunking import load_blocks
from acd.errors import UsageError
from acd.core.heads import ExitHeads
from acd.tools.tiny import make_tiny_model
from acd.pipeline.training import run_from_params
from conftest import write_multiexit

ROOT = Path(__file__).resolve().parents[1]


def project(directory: Path, model: Path, source: str) -> Path:
    """A project dir whose corpus does not exist: any attempt to chunk it would fail."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "params.yaml").write_text(
        f"model: {model}\nseed: 0\nheads:\n  source: {json.dumps(source)}\n"
        "corpus:\n  source: files\n  files: [no/such/corpus.jsonl]\n"
        "train:\n  exit_layers: [2, 4]\n  batch_size: 4\n  micro_batch_size: 2\n"
    )
    return directory


def stage(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stages_import_released_heads_instead_of_training(
    tiny_gpt2: Path, multiexit_checkpoint: Path, tmp_path: Path
) -> None:
    root = project(tmp_path, tiny_gpt2, str(multiexit_checkpoint))
    for name in ("chunk", "train_heads"):
        result = stage(name, root)
        assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((root / "data" / "blocks" / "manifest.json").read_text())
    assert manifest["skipped"] == {"heads.source": str(multiexit_checkpoint)}
    assert sorted(path.name for path in (root / "data" / "blocks").iterdir()) == ["manifest.json"]
    with pytest.raises(UsageError, match=r"holds no blocks: chunk skipped the corpus .* set heads.source: train"):
        load_blocks(root / "data" / "blocks")

    heads = ExitHeads.load(root / "models" / "heads")
    released = load_file(str(multiexit_checkpoint / "model.safetensors"))
    assert heads.exit_layers == [2, 4] and heads.config.base_model == str(tiny_gpt2)
    for layer in (2, 4):
        torch.testing.assert_close(heads[layer].weight, released[f"name_to_lm_exit_head.lm_head_{layer}.weight"])
    metrics = json.loads((root / "metrics" / "train_heads.json").read_text())
    assert metrics == {"imported_from": str(multiexit_checkpoint), "exit_layers": [2, 4],
                       "base_tensors_checked": ["transformer.ln_f.bias", "transformer.ln_f.weight",
                                                "transformer.wte.weight"]}
    assert (root / "metrics" / "train_loss.csv").read_text() == "step,lr,head2,head4,total\n"
    assert not (root / "checkpoints").exists()  # no training state: nothing trained

    model, _ = acd.load(tiny_gpt2, heads=root / "models" / "heads", layer=2, device="cpu")
    assert str(model.acd_contrast.expert) == "head4" and str(model.acd_contrast.amateur) == "head2"


def test_bad_source_is_one_line_exit_2_and_writes_nothing(tiny_gpt2: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "checkpoint"
    root = project(tmp_path / "project", tiny_gpt2, str(missing))
    result = stage("train_heads", root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: heads.source={str(missing)!r} is not allowed: it is not a directory, and not a hub id "
                      "(owner/name)"]
    assert sorted(path.name for path in root.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ibm/gpt2-medium-multiexit", r"^heads.source='ibm/gpt2-medium-multiexit' is not a local directory and "
                                      r"cannot be reached on the hub \(.*\); offline, point heads.source at a local "
                                      r"directory"),
        ("", r"^heads.source='' is not allowed: use 'train' or the hub id or local directory"),
    ],
)
def test_unreachable_or_empty_source(
    source: str, message: str, tiny_gpt2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project(tmp_path, tiny_gpt2, source))
    with pytest.raises(UsageError, match=message):
        run_from_params()
    assert not (tmp_path / "models").exists()


def test_checkpoint_layout_and_base_model_are_checked(
    tiny_gpt2: Path, multiexit_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        (tiny_gpt2, tiny_gpt2, r"is not a multi-exit checkpoint: config.json has no lm_head_layer_indices"),
        (make_tiny_model(tmp_path / "other_seed", n_layers=4, d_model=32, seed=1), multiexit_checkpoint,
         r"was trained on another base model than model='.*other_seed' \(transformer.wte.weight differs\)"),
        (make_tiny_model(tmp_path / "deeper", n_layers=6, d_model=32), multiexit_checkpoint,
         r"does not fit model='.*deeper': the checkpoint has vocab 50257, hidden size 32, 4 layers; the model has "
         r"vocab 50257, hidden size 32, 6 layers"),
    ]
    for index, (model, source, message) in enumerate(cases):
        monkeypatch.chdir(project(tmp_path / f"case{index}", model, str(source)))
        with pytest.raises(UsageError, match=r"^heads.source='.*' " + message):
            run_from_params()
        assert not Path("models").exists() and not Path("metrics").exists()


def test_float16_copy_of_the_base_is_accepted(tiny_gpt2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released = write_multiexit(tiny_gpt2, tmp_path / "half")
    tensors = {key: value.half() for key, value in load_file(str(released / "model.safetensors")).items()}
    save_file(tensors, str(released / "model.safetensors"))
    monkeypatch.chdir(project(tmp_path / "project", tiny_gpt2, str(released)))
    assert run_from_params()["exit_layers"] == [2, 4]


def test_dvc_repro_imports_through_the_pipeline(tmp_path: Path) -> None:
    """The project's dvc.yaml: `dvc repro train_heads` with a checkpoint runs both stages and trains nothing."""
    import yaml

    from acd.tools.demo import init_repo, prepare, run

    repo = prepare(tmp_path / "repo")
    released = write_multiexit(repo / "models" / "base", tmp_path / "released", seed=5)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["heads"]["source"] = str(released)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init_repo(repo)
    output = run([sys.executable, "-m", "dvc", "repro", "train_heads"], repo, quiet=True).stdout
    assert "Running stage 'chunk'" in output and "Running stage 'train_heads'" in output
    assert ExitHeads.load(repo / "models" / "heads").config.metadata["imported_from"] == str(released)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for stage_name in ("chunk", "train_heads"):
        assert lock[stage_name]["params"]["params.yaml"]["heads.source"] == str(released)
    status = run([sys.executable, "-m", "dvc", "status", "train_heads"], repo, quiet=True).stdout
    assert "up to date" in status
