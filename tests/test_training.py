"""Head training: the loss falls, the base never changes, a resumed or two-process run equals a plain one."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import acd.pipeline.training as training
from acd.pipeline.chunking import Blocks, CorpusParams, chunk_corpus, load_blocks
from acd.errors import UsageError
from acd.core.heads import ExitHeads
from acd.core.loading import load_pretrained
from acd.tools.tiny import make_tiny_model
from acd.pipeline.training import (
    Outputs,
    TrainParams,
    accumulate,
    check_setup,
    linear_schedule,
    run_from_params,
    train_heads,
)

BLOCK = 24
PARAMS = TrainParams(exit_layers=[2, 4], lr=1e-2, batch_size=4, micro_batch_size=2, epochs=2, max_steps=6,
                     loss_chunk=20, checkpoint_every=100, log_every=1)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls gain nothing from threads, and on a busy machine OpenMP threads can slow them 20×."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def blocks_dir(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("blocks")
    corpus = CorpusParams(source="files", files=["acd-data:sample/corpus.jsonl"], n_documents=3, block_size=BLOCK,
                          val_blocks=4)
    chunk_corpus(corpus, str(tiny_gpt2), root / "blocks", root / "work")
    return root / "blocks"


def outputs_in(directory: Path) -> Outputs:
    return Outputs(heads=directory / "heads", metrics=directory / "metrics.json", loss_log=directory / "loss.csv",
                   checkpoints=directory / "checkpoints")


def state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def train(tiny_gpt2: Path, blocks_dir: Path, out: Path, params: TrainParams = PARAMS, **kwargs):
    model, tokenizer = load_pretrained(tiny_gpt2, device="cpu")
    return train_heads(model, tokenizer, str(tiny_gpt2), load_blocks(blocks_dir), params, 0, outputs_in(out), **kwargs)


def head_weights(directory: Path) -> dict[int, torch.Tensor]:
    heads = ExitHeads.load(directory)
    return {layer: heads[layer].weight.detach().clone() for layer in heads.exit_layers}


def test_loss_falls_base_untouched_outputs_written(tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_pretrained(tiny_gpt2, device="cpu")
    before = state_hash(model)
    metrics = train_heads(model, tokenizer, str(tiny_gpt2), load_blocks(blocks_dir), PARAMS, 0, outputs_in(tmp_path))
    assert state_hash(model) == before
    assert all(not parameter.requires_grad and parameter.grad is None for parameter in model.parameters())

    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,lr,head2,head4,total" and len(rows) == 1 + PARAMS.max_steps
    first, last = (list(map(float, row.split(",")[2:])) for row in (rows[1], rows[-1]))
    assert last[0] < first[0] and last[1] < first[1] and last[2] == pytest.approx(last[0] + last[1], rel=1e-4)

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert set(saved["exits"]) == {"head2", "head4", "lens4"} and saved["val_blocks"] == 4
    for values in saved["exits"].values():
        assert values["val_perplexity"] == pytest.approx(torch.tensor(values["val_loss"]).exp().item(), rel=1e-6)
    heads = ExitHeads.load(tmp_path / "heads")
    assert heads.exit_layers == [2, 4] and heads.config.metadata["training"]["params"]["lr"] == PARAMS.lr
    assert not (tmp_path / "checkpoints").exists()


def test_same_params_and_seed_give_byte_identical_outputs(tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path) -> None:
    """Determinism on CPU: the metrics JSON, the loss log and the heads file repeat byte for byte."""
    for run in ("one", "two"):
        train(tiny_gpt2, blocks_dir, tmp_path / run, replace(PARAMS, max_steps=3))
    for name in ("metrics.json", "loss.csv", "heads/heads.safetensors", "heads/heads.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_chunked_loss_equals_full_logits(tiny_gpt2: Path, blocks_dir: Path) -> None:
    model, _ = load_pretrained(tiny_gpt2, device="cpu")
    heads = ExitHeads.for_model(model, [1, 3, 4], base_model="tiny", seed=3)
    tokens = torch.from_numpy(load_blocks(blocks_dir).train[:3].astype("int64"))
    grads, losses = [], []
    for chunk in (7, None):
        heads.zero_grad(set_to_none=True)
        losses.append(accumulate(model, heads, tokens, chunk, scale=0.5))
        grads.append([heads[layer].weight.grad.clone() for layer in heads.exit_layers])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-4)
    for chunked, full in zip(*grads):
        torch.testing.assert_close(chunked, full, rtol=1e-4, atol=1e-7)


def test_linear_schedule() -> None:
    factor = linear_schedule(warmup_steps=2, total_steps=6)
    assert [factor(step) for step in range(7)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert [linear_schedule(0, 4)(step) for step in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_resume_after_interruption_equals_uninterrupted_run(
    tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = replace(PARAMS, max_steps=None, epochs=2, checkpoint_every=3, log_every=3)
    assert len(load_blocks(blocks_dir).train) // params.batch_size == 5  # 10 steps: resumes across epochs
    train(tiny_gpt2, blocks_dir, tmp_path / "plain", params)
    assert train(tiny_gpt2, blocks_dir, tmp_path / "resumed", params, stop_after=4) is None  # mid log window
    assert [path.name for path in training.checkpoint_files(tmp_path / "resumed" / "checkpoints")] == [
        "checkpoint-000000004.pt"]  # keep_checkpoints: 1 (step 3's is gone)
    assert not (tmp_path / "resumed" / "heads").exists()
    steps_run = []
    real_step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda *a, **k: steps_run.append(1) or real_step(*a, **k))
    train(tiny_gpt2, blocks_dir, tmp_path / "resumed", params)
    assert len(steps_run) == 10 - 4  # it went on from the checkpoint
    plain, resumed = head_weights(tmp_path / "plain" / "heads"), head_weights(tmp_path / "resumed" / "heads")
    for layer in plain:
        torch.testing.assert_close(resumed[layer], plain[layer], rtol=0, atol=1e-7)
    assert (tmp_path / "plain" / "loss.csv").read_text() == (tmp_path / "resumed" / "loss.csv").read_text()


def test_sigkilled_stage_resumes_to_the_same_heads(
    tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = replace(PARAMS, max_steps=None, epochs=4, checkpoint_every=2)  # 20 steps
    write_params(tmp_path, tiny_gpt2, blocks_dir, params)
    stage = [sys.executable, str(Path(__file__).resolve().parents[1] / "stages" / "train_heads.py")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    checkpoints = tmp_path / "checkpoints" / "train_heads"
    process = subprocess.Popen(stage, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not training.checkpoint_files(checkpoints) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL and not (tmp_path / "models").exists()
    killed_at = torch.load(training.checkpoint_files(checkpoints)[-1], weights_only=True)["step"]
    assert 2 <= killed_at < 20

    steps_run = []
    real_step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda *a, **k: steps_run.append(1) or real_step(*a, **k))
    monkeypatch.chdir(tmp_path)
    run_from_params()  # the stage again, in this process
    assert len(steps_run) == 20 - killed_at
    monkeypatch.undo()
    train(tiny_gpt2, blocks_dir, tmp_path / "plain", params)
    plain, resumed = head_weights(tmp_path / "plain" / "heads"), head_weights(tmp_path / "models" / "heads")
    for layer in plain:
        torch.testing.assert_close(resumed[layer], plain[layer], rtol=0, atol=1e-6)


def write_params(directory: Path, model: Path, blocks: Path, train_params: TrainParams) -> Path:
    lines = [f"model: {model}", "seed: 0", "alpha: 0.1", "layer: 2", "train:"]
    for key, value in train_params.__dict__.items():
        lines.append(f"  {key}: {json.dumps(value)}")
    (directory / "params.yaml").write_text("\n".join(lines) + "\n")
    (directory / "data").mkdir(exist_ok=True)
    if not (directory / "data" / "blocks").exists():
        (directory / "data" / "blocks").symlink_to(blocks)
    return directory / "params.yaml"


def test_two_gloo_processes_equal_one(
    tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = replace(PARAMS, max_steps=3, batch_size=4, micro_batch_size=1)
    single, double = tmp_path / "one", tmp_path / "two"
    for directory in (single, double):
        directory.mkdir()
        write_params(directory, tiny_gpt2, blocks_dir, params)
    with monkeypatch.context() as patch:
        patch.chdir(single)
        run_from_params()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "acd.tools.cli",
         "train-heads"], cwd=double, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = head_weights(single / "models" / "heads"), head_weights(double / "models" / "heads")
    initial = ExitHeads.for_model(load_pretrained(tiny_gpt2, device="cpu")[0], params.exit_layers, "x", seed=0)
    for layer in one:
        assert (one[layer] - initial[layer].weight).abs().max() > 1e-3  # it trained
        torch.testing.assert_close(two[layer], one[layer], rtol=1e-4, atol=1e-6)
    metrics_one = json.loads((single / "metrics" / "train_heads.json").read_text())
    metrics_two = json.loads((double / "metrics" / "train_heads.json").read_text())
    assert metrics_two["train"]["processes"] == 2
    for name, values in metrics_one["exits"].items():
        assert metrics_two["exits"][name]["val_loss"] == pytest.approx(values["val_loss"], rel=1e-5)
    # params `processes: 2` and no launcher: the stage starts the two processes itself, with the same result
    launched = tmp_path / "launched"
    launched.mkdir()
    params_file = write_params(launched, tiny_gpt2, blocks_dir, params)
    params_file.write_text(params_file.read_text() + "processes: 2\n")
    result = subprocess.run([sys.executable, "-m", "acd.tools.cli", "train-heads"], cwd=launched, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert head_weights(launched / "models" / "heads").keys() == two.keys()
    for layer, weight in head_weights(launched / "models" / "heads").items():
        torch.testing.assert_close(weight, two[layer], rtol=0, atol=0)


def test_bad_inputs_are_usage_errors_before_anything_is_written(
    tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path
) -> None:
    blocks = load_blocks(blocks_dir)
    with pytest.raises(UsageError, match=r"^train.exit_layers=\[2, 5\] is not allowed: layer 5 is outside 1..4"):
        check_setup(replace(PARAMS, exit_layers=[2, 5]), blocks, str(tiny_gpt2), 1)
    with pytest.raises(UsageError, match=r"^train.exit_layers=\[0, 2\] is not allowed"):
        replace(PARAMS, exit_layers=[0, 2])
    with pytest.raises(UsageError, match=r"^train.batch_size=64 is not allowed: the blocks hold only \d+ training"):
        check_setup(replace(PARAMS, batch_size=64, micro_batch_size=8), blocks, str(tiny_gpt2), 1)
    with pytest.raises(UsageError, match=r"^train.batch_size=4 is not allowed with 3 processes"):
        check_setup(PARAMS, blocks, str(tiny_gpt2), 3)
    with pytest.raises(UsageError, match=r"^corpus.val_blocks=0 is not allowed for train_heads"):
        check_setup(PARAMS, Blocks(blocks.manifest, blocks.train, blocks.val[:0]), str(tiny_gpt2), 1)
    short_context = make_tiny_model(tmp_path / "short", n_layers=4, d_model=16, context=16)
    with pytest.raises(UsageError, match=r"^corpus.block_size=24 \(of the blocks\) is not allowed: .* at most 16"):
        check_setup(PARAMS, blocks, str(short_context), 1)

    other = tmp_path / "other_tokenizer"
    model, tokenizer = load_pretrained(tiny_gpt2, device="cpu")
    tokenizer.add_tokens(["<extra_token>"])
    with pytest.raises(UsageError, match=r"^model='.*' does not fit the blocks: they were tokenized for"):
        train_heads(model, tokenizer, "other", blocks, PARAMS, 0, outputs_in(other))
    assert not other.exists()


def test_cli_bad_layer_is_one_line_exit_2(tiny_gpt2: Path, blocks_dir: Path, tmp_path: Path) -> None:
    write_params(tmp_path, tiny_gpt2, blocks_dir, replace(PARAMS, exit_layers=[2, 9]))
    stage = Path(__file__).resolve().parents[1] / "stages" / "train_heads.py"
    result = subprocess.run([sys.executable, str(stage)], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: train.exit_layers=[2, 9] is not allowed: layer 9 is "
                                                     "outside 1..4") and "Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "params.yaml"]
