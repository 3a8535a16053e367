"""lm-eval per exit and with ACD, offline: the shipped local tasks (acd/data/tasks) on the tiny model.

The tiny model's original head (lens4) is near-uniform and its trained-head stand-ins are
peaked, so ACD with the original expert and the head-2 amateur moves every score.
"""

from __future__ import annotations

import json
import math
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

import acd
from acd.eval.benchmarks import Benchmarks, evaluate_tasks, plot_rows
from acd.errors import UsageError
from acd.core.model import Exit
from acd.pipeline.params import ModelSeed, read_params, section
from acd.eval.tasks import LOCAL_TASKS, load_tasks, task_manager

REPO = Path(__file__).resolve().parents[1]
TASKS = ["lambada_local", "wikitext_local", "inverse_scaling_memo_trap_local"]
LIMIT = 2
# Each name -> the ACD model's contrast that scores it alone (expert, amateur).
SETTINGS = {
    "head2": (Exit(2, "head"), None),
    "head4": (Exit(4, "head"), None),
    "lens4": (Exit(4, "lens"), None),
    "acd": (Exit(4, "lens"), Exit(2, "head")),
}


def acd_args(tiny_gpt2: Path, gpt2_heads: Path, **extra: object) -> dict:
    return {"pretrained": str(tiny_gpt2), "heads": str(gpt2_heads), "layer": 2, "expert": "original", **extra}


def run(model_args: dict, tasks: list[str] = TASKS, limit: int = LIMIT) -> dict:
    return evaluate_tasks(model_args, tasks, limit=limit, batch_size=3, bootstrap_iters=0, include_defaults=False)


def finite(results: dict) -> bool:
    return all(math.isfinite(v) for by_exit in results.values() for metrics in by_exit.values() for v in metrics.values())


@pytest.fixture(scope="module")
def hflm_reference(tiny_gpt2: Path, gpt2_heads: Path) -> dict:
    """Every setting scored by lm-eval's own HFLM over the ACD model object: {task: {name: metrics}}."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from acd.eval.benchmarks import task_metrics

    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, expert="original", device="cpu")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=3)
    reference: dict = {}
    with task_manager(include_defaults=False) as manager:
        tasks = load_tasks(manager, TASKS)
        for name, (expert, amateur) in SETTINGS.items():
            model.set_contrast(expert=expert, amateur=amateur)
            out = simple_evaluate(model=lm, tasks=tasks, limit=LIMIT, bootstrap_iters=0, log_samples=False,
                                  task_manager=manager)
            for task, metrics in task_metrics(out["results"]).items():
                reference.setdefault(task, {})[name] = metrics
    return reference


@pytest.fixture(scope="module")
def swept(tiny_gpt2: Path, gpt2_heads: Path) -> dict:
    return run(acd_args(tiny_gpt2, gpt2_heads, exits="all+acd"))


def test_one_pass_scores_every_exit_as_hflm_does(swept: dict, hflm_reference: dict) -> None:
    assert swept["model"]["exits"] == ["head2", "head4", "lens4", "acd"]
    assert set(swept["results"]) == set(TASKS) and finite(swept["results"])
    for task in TASKS:
        for name in SETTINGS:
            ours, theirs = swept["results"][task][name], hflm_reference[task][name]
            assert ours.keys() == theirs.keys()
            for metric, value in theirs.items():
                assert ours[metric] == pytest.approx(value, rel=1e-4, abs=1e-6), (task, name, metric)
    # ACD really changes the scores here, so the comparison above can tell exits apart.
    wikitext = swept["results"]["wikitext_local"]
    assert wikitext["acd"]["word_perplexity"] != pytest.approx(wikitext["lens4"]["word_perplexity"], rel=1e-3)


def test_registered_acd_model_equals_hflm_over_the_acd_model(
    tiny_gpt2: Path, gpt2_heads: Path, hflm_reference: dict
) -> None:
    from lm_eval.api.registry import get_model

    from acd.eval.lm_eval_model import ACDLM

    assert get_model("acd") is ACDLM
    document = run(acd_args(tiny_gpt2, gpt2_heads))
    assert document["model"]["exits"] == ["acd"]
    assert document["model"]["acd"]["expert"] == "lens4" and document["model"]["acd"]["amateur"] == "head2"
    for task in TASKS:
        assert document["results"][task]["acd"] == pytest.approx(hflm_reference[task]["acd"], rel=1e-6)


def test_acd_word_perplexity_is_from_a_normalised_distribution(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    document = run(acd_args(tiny_gpt2, gpt2_heads, exits="acd+lens4"), tasks=["wikitext_local"], limit=1)
    page = json.loads((LOCAL_TASKS / "wikitext_local.jsonl").read_text().splitlines()[0])["page"]
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, expert="original", device="cpu")
    # lm-eval's rolling log-likelihood: the prefix token, then the detokenized page (one window here).
    ids = [tokenizer.eos_token_id] + tokenizer(wikitext_detokenizer({"page": page})).input_ids
    assert len(ids) <= 1024
    with torch.no_grad():
        log_probs = model(torch.tensor([ids])).logits[0, :-1].double()
    assert torch.allclose(log_probs.logsumexp(-1), torch.zeros(len(ids) - 1, dtype=torch.float64), atol=1e-5)
    log_likelihood = log_probs.gather(-1, torch.tensor(ids[1:])[:, None]).sum().item()
    words = len(re.split(r"\s+", page))
    scores = document["results"]["wikitext_local"]
    assert scores["acd"]["word_perplexity"] == pytest.approx(math.exp(-log_likelihood / words), rel=1e-4)
    assert scores["acd"]["word_perplexity"] != pytest.approx(scores["lens4"]["word_perplexity"], rel=1e-3)


def test_sweep_and_acd_stages_write_metrics_plots_and_report(
    tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {
        "model": str(tiny_gpt2), "alpha": 0.1, "layer": 2, "expert": "original", "amateur": "head", "seed": 0,
        "benchmarks": {"tasks": {"inverse_scaling": ["inverse_scaling_memo_trap_local",
                                                     "inverse_scaling_modus_tollens_local"]},
                       "heads": str(gpt2_heads), "limit": 4, "batch_size": 4, "bootstrap_iters": 0},
    }
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    monkeypatch.chdir(tmp_path)
    for stage in ("benchmark_layers", "benchmark_acd"):
        monkeypatch.setattr(sys, "argv", [stage, "inverse_scaling"])
        runpy.run_path(str(REPO / "stages" / f"{stage}.py"), run_name="__main__")
    layers = json.loads(Path("metrics/benchmarks/inverse_scaling_layers.json").read_text())
    acd_doc = json.loads(Path("metrics/benchmarks/inverse_scaling_acd.json").read_text())
    assert finite(layers["results"]) and finite(acd_doc["results"])
    for task in params["benchmarks"]["tasks"]["inverse_scaling"]:
        assert set(layers["results"][task]) == {"head2", "head4", "lens4"}
        assert set(acd_doc["results"][task]) == {"acd"}
        assert {"acc", "acc_norm"} <= set(acd_doc["results"][task]["acd"])
    head_rows = json.loads(Path("metrics/plots/benchmarks/inverse_scaling_head.json").read_text())
    assert [row["layer"] for row in head_rows] == [2, 4] and all("acc" in row for row in head_rows)
    assert json.loads(Path("metrics/plots/benchmarks/inverse_scaling_acd.json").read_text())[0]["layer"] == 4

    monkeypatch.setattr(sys, "argv", ["benchmark_report", "inverse_scaling"])
    runpy.run_path(str(REPO / "stages" / "benchmark_report.py"), run_name="__main__")
    report = Path("metrics/benchmarks/report.md").read_text()
    assert "inverse_scaling_modus_tollens_local" in report and "ACD moves it" in report


def test_stage_params_readers() -> None:
    params = read_params(REPO / "params.yaml")
    assert section(params, "benchmarks", Benchmarks) == Benchmarks()  # params.yaml holds the paper's setup
    assert Benchmarks().task_names("lambada") == ["lambada_openai"]
    assert len(Benchmarks().task_names("inverse_scaling")) == 11
    with pytest.raises(UsageError, match="benchmarks.limit=0 is not allowed"):
        Benchmarks(limit=0)
    with pytest.raises(UsageError, match="group='lambda' is not in benchmarks.tasks"):
        Benchmarks().task_names("lambda")
    # The sweep reads model and seed only; alpha, layer and amateur stay out of it.
    assert set(ModelSeed.__dataclass_fields__) == {"model", "seed"}


def test_report_beside_the_paper_and_where_acd_moves_accuracy() -> None:
    from acd.reports.benchmark_report import render

    model = {"model_name": "gpt2-medium", "acd": {"expert": "head24", "amateur": "head12", "alpha": 0.1}}
    layers = {
        "lambada": {"model": model, "results": {"lambada_openai": {
            "head12": {"acc": 0.2, "perplexity": 90.0}, "head24": {"acc": 0.39, "perplexity": 20.0},
            "lens24": {"acc": 0.43, "perplexity": 18.0}}}},
        "inverse_scaling": {"model": model, "results": {"memo": {"head24": {"acc": 0.5}}, "tollens": {"head24": {"acc": 0.6}}}},
    }
    acd_docs = {
        "lambada": {"model": model, "results": {"lambada_openai": {"acd": {"acc": 0.55, "perplexity": 15.0}}}},
        "inverse_scaling": {"model": model, "results": {"memo": {"acd": {"acc": 0.7}}, "tollens": {"acd": {"acc": 0.6}}}},
    }
    report = render({"layers": layers, "acd": acd_docs})
    assert "| L-24orig | 0.43 | 0.43 | 18 | 18.3 | — | 26.8 |" in report
    assert "| L-24new+acd | 0.55 | 0.55 | 15 | 15.4 | — | 57.2 |" in report
    assert "| L-24orig+acd | — | 0.56 | — | — | — | 71.3 |" in report
    assert "| memo | acc | head24 | 0.5 | 0.7 | +0.2000 | up |" in report
    assert "| tollens | acc | head24 | 0.6 | 0.6 | +0.0000 | same |" in report
    assert "| acd (head24 vs head12, alpha 0.1) | 0.55 | 15 |" in report


def test_plot_rows_average_over_the_group() -> None:
    document = {
        "model": {"acd": {"expert": "head4"}},
        "results": {"a": {"head4": {"acc": 0.5, "acc_stderr": 0.1}, "head2": {"acc": 1.0}, "lens4": {"acc": 0.0}},
                    "b": {"head4": {"acc": 1.0}, "head2": {"acc": 0.0}, "lens4": {"acc": 1.0}}},
    }
    assert plot_rows(document, "head") == [{"exit": "head2", "layer": 2, "acc": 0.5}, {"exit": "head4", "layer": 4, "acc": 0.75}]
    assert plot_rows(document, "lens") == [{"exit": "lens4", "layer": 4, "acc": 0.5}]


def test_bad_task_name_lists_close_matches() -> None:
    with task_manager(include_defaults=False) as manager:
        with pytest.raises(UsageError, match=r"task='lambada_locl' is not a known lm-eval task: close matches are lambada_local"):
            load_tasks(manager, ["lambada_locl"])


def test_unreachable_dataset_names_task_dataset_and_the_local_way(tmp_path: Path) -> None:
    (tmp_path / "probe.yaml").write_text(
        "task: hub_probe\ndataset_path: acd-tests/not-on-this-machine\noutput_type: loglikelihood\n"
        "test_split: test\ndoc_to_text: '{{text}}'\ndoc_to_target: ' x'\n"
    )
    with task_manager([tmp_path], include_defaults=False) as manager:
        with pytest.raises(UsageError) as error:
            load_tasks(manager, ["hub_probe"])
    message = str(error.value)
    assert "\n" not in message
    assert "task='hub_probe'" in message and "'acd-tests/not-on-this-machine'" in message
    assert "dataset_path: json" in message and "include_path" in message
    assert "lambada_local" in message and "`acd demo`" in message


def test_local_tasks_load_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "docs.jsonl").write_text('{"text": "one two three"}\n{"text": "four five six"}\n')
    (own / "own.yaml").write_text(
        "task: own_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: docs.jsonl\n"
        "output_type: loglikelihood\ntest_split: test\ndoc_to_text: \"{{text.split(' ')[:-1]|join(' ')}}\"\n"
        "doc_to_target: \"{{' '+text.split(' ')[-1]}}\"\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with task_manager([own], include_defaults=False) as manager:
        tasks = {task.task_name: task for task in load_tasks(manager, [*TASKS, "own_local"])}
    assert {name: len(list(task.eval_docs)) for name, task in tasks.items()} == {
        "lambada_local": 16, "wikitext_local": 8, "inverse_scaling_memo_trap_local": 12, "own_local": 2}


def test_exit_names(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    from acd.core.exits import parse_exits

    model, _ = acd.load(tiny_gpt2, heads=gpt2_heads, device="cpu")
    assert list(parse_exits("all", model)) == ["head2", "head4", "lens4"]
    assert list(parse_exits("lenses+new+head2", model)) == ["lens1", "lens2", "lens3", "lens4", "head4", "head2"]
    assert list(parse_exits(["original"], model)) == ["lens4"]
    cases = {
        "acd": "exits='acd' is not allowed without an amateur",
        "head3": "layer=3 has no trained head",
        "lens9": "layer=9 is out of range",
        "top": "exits='top' is not allowed",
        "head2++lens4": "is not allowed: give names joined by '+'",
    }
    for spec, message in cases.items():
        with pytest.raises(UsageError, match=re.escape(message)):
            parse_exits(spec, model)
    bare, _ = acd.load(tiny_gpt2, device="cpu")
    assert list(parse_exits("all", bare)) == ["lens1", "lens2", "lens3", "lens4"]
    with pytest.raises(UsageError, match="no trained heads were given"):
        parse_exits("heads", bare)


def test_model_args_are_checked() -> None:
    from acd.eval.lm_eval_model import parse_model_args

    assert parse_model_args("pretrained=gpt2-medium,layer=12,alpha=0.1,exits=all+acd") == {
        "pretrained": "gpt2-medium", "layer": 12, "alpha": 0.1, "exits": "all+acd"}
    with pytest.raises(UsageError, match="model_args key 'alpah' is not known: did you mean alpha"):
        parse_model_args("pretrained=x,alpah=0.1")
    with pytest.raises(UsageError, match="no pretrained="):
        parse_model_args("layer=12")


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``acd ...`` in this process (the subprocess path is covered by test_cli.py): exit code, stdout, stderr."""
    from acd.tools.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_lm_eval(tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_args = f"pretrained={tiny_gpt2},heads={gpt2_heads},layer=2,expert=original,exits=all+acd"
    output = tmp_path / "out.json"
    code, out, err = run_cli("lm-eval", "--tasks", "lambada_local", "--model-args", model_args, "--limit", "2",
                             "--no-default-tasks", "--output", str(output), capsys=capsys)
    assert code == 0, err
    document = json.loads(output.read_text())
    assert set(document["results"]["lambada_local"]) == {"head2", "head4", "lens4", "acd"}
    assert re.search(r"^acd\s+[\d.]+\s+[\d.]+$", out, re.MULTILINE), out

    code, out, err = run_cli("lm-eval", "--tasks", "lambada_locl", "--model-args", model_args, "--no-default-tasks",
                             capsys=capsys)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == ["error: task='lambada_locl' is not a known lm-eval task: close matches are lambada_local, acd_local"]
