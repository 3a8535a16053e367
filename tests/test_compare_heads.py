"""Paper Table 6 (compare_heads): the four settings gathered from the right documents, and the stages offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stage_script import run, table6_project

from acd.eval.compare_heads import SETTINGS, gather, other_expert, report_table
from acd.errors import UsageError
from acd.eval.generation_metrics import acd_plot_rows
from acd.pipeline.jsonl import read_jsonl
from acd.reports.report import render_markdown

ROOT = Path(__file__).resolve().parent.parent


def tree(expert: str, diversity: float, **acd: object) -> dict:
    cell = {"metrics": {"diversity": diversity, "coherence": diversity / 2, "n": 3},
            "settings": {"model": "gpt2-medium", "expert": expert, **acd}}
    return {"greedy": {"wikitext": cell, "wikinews": {"metrics": {}, "settings": {"expert": expert}}}}


def bench(results: dict, expert: str | None = None) -> dict:
    model = {"model_name": "gpt2-medium", **({"acd": {"expert": expert, "amateur": "head12"}} if expert else {})}
    return {"model": model, "results": results}


LAYERS = {
    "lambada": bench({"lambada_openai": {"head12": {"acc": 0.1}, "head24": {"acc": 0.39, "perplexity": 20.0},
                                         "lens24": {"acc": 0.43, "perplexity": 18.0}}}),
    "wikitext": bench({"wikitext": {"head24": {"word_perplexity": 30.0}, "lens24": {"word_perplexity": 26.0}}}),
}


def acd_bench(expert: str, acc: float, ppl: float) -> dict:
    return {"lambada": bench({"lambada_openai": {"acd": {"acc": acc, "perplexity": 15.0}}}, expert),
            "wikitext": bench({"wikitext": {"acd": {"word_perplexity": ppl}}}, expert)}


@pytest.mark.parametrize("named", ["original", "new"])
def test_each_setting_comes_from_the_document_of_its_expert(named: str) -> None:
    # Params name one expert (its cells come first: the pipeline's own stages); compare_heads adds the other.
    exits = {"original": "lens24", "new": "head24"}
    plain = {"original": tree("lens24", 0.22), "new": tree("head24", 0.21)}
    acd = {"original": tree("lens24", 0.62, amateur="head12", alpha=0.1),
           "new": tree("head24", 0.75, amateur="head12", alpha=0.1)}
    benches = {"original": acd_bench("lens24", 0.56, 71.0), "new": acd_bench("head24", 0.55, 57.0)}
    other = other_expert(named)
    assert exits[other] != exits[named]
    document = gather([plain[named], plain[other]], [acd[named], acd[other]], LAYERS, [benches[named], benches[other]])
    table = document["table"]
    assert list(table) == list(SETTINGS)
    assert table["original"] == {"diversity": 0.22, "coherence": 0.11, "lambada_accuracy": 0.43,
                                 "lambada_perplexity": 18.0, "wikitext_perplexity": 26.0}
    assert table["new"]["lambada_accuracy"] == 0.39 and table["new"]["wikitext_perplexity"] == 30.0
    assert table["original+acd"]["diversity"] == 0.62 and table["original+acd"]["lambada_accuracy"] == 0.56
    assert table["new+acd"]["diversity"] == 0.75 and table["new+acd"]["wikitext_perplexity"] == 57.0
    assert document["settings"]["exit_layer"] == 24 and document["settings"]["alpha"] == 0.1
    assert document["settings"]["lambada_task"] == "lambada_openai"
    markdown = render_markdown([report_table(document)])
    # ours (paper Table 6; LAMBADA ppl from Table 4 where the paper gives one)
    assert "| L-24orig | 0.22 (0.22) | 0.11 (0.63) | 0.43 (0.43) | 26.0 (26.8) | 18.0 (18.3) |" in markdown
    assert "| L-24new+ACD | 0.75 (0.75) | 0.38 (0.63) | 0.55 (0.55) | 57.0 (57.2) | 15.0 (15.4) |" in markdown
    assert "| L-24orig+ACD | 0.62 (0.62) |" in markdown
    assert "paper: gpt2-medium, Table 6" in markdown and "no numbers for this model" not in markdown


def test_missing_cells_name_what_to_change() -> None:
    plain = [tree("lens24", 0.2), tree("head24", 0.2)]
    acd = [tree("lens24", 0.6, amateur="head12", alpha=0.1), tree("head24", 0.7, amateur="head12", alpha=0.1)]
    benches = [acd_bench("lens24", 0.5, 70.0), acd_bench("head24", 0.5, 60.0)]
    no_new_head = {group: bench({task: {k: v for k, v in by_exit.items() if k != "head24"}
                                 for task, by_exit in doc["results"].items()}) for group, doc in LAYERS.items()}
    with pytest.raises(UsageError, match=r"needs exit head24 .*train.exit_layers.*benchmarks.exits: all"):
        gather(plain, acd, no_new_head, benches)
    with pytest.raises(UsageError, match="no greedy generations for new"):
        gather([plain[0], plain[0]], acd, LAYERS, benches)
    with pytest.raises(UsageError, match="keep greedy in generation.strategies"):
        gather([{"top-p": {}}, plain[1]], acd, LAYERS, benches)


def test_acd_plot_point_sits_at_the_expert_layer() -> None:
    rows = acd_plot_rows(tree("head24", 0.75, amateur="head12", alpha=0.1))
    assert [(row["domain"], row["layer"], row["exit"], row["diversity"]) for row in rows] == [
        ("wikinews", 24, "acd", None), ("wikitext", 24, "acd", 0.75)]


def test_dvc_yaml_only_the_acd_stage_reads_acd_knobs() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    knobs = {"alpha", "layer", "amateur"}
    assert not knobs & set(stages["compare_heads_plain"]["params"])
    assert knobs <= set(stages["compare_heads_acd"]["params"])
    assert "params" not in stages["compare_heads"]  # it reads what the documents record



def test_stages_offline_on_the_tiny_model(tmp_path: Path, tiny_gpt2: Path, gpt2_heads: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    table6_project(tmp_path, tiny_gpt2, gpt2_heads, n_prompts=2, limit=2, monkeypatch=monkeypatch)
    for kind in ("plain", "acd"):
        run("generate.py", kind, "greedy")
        run("generation_metrics.py", kind)
    run("generate.py", "layers")
    for group in ("lambada", "wikitext"):
        for stage in ("benchmark_layers", "benchmark_acd"):
            run(f"{stage}.py", group)
    run("compare_heads.py", "plain")
    run("compare_heads.py", "acd")
    run("compare_heads.py", "report")

    # The other expert (new: the trained head4) decodes exactly as the per-exit sweep's head 4 alone.
    added = read_jsonl("data/compare_heads/plain/greedy/wikitext.jsonl", ["continuation"], "generations")
    sweep = read_jsonl("data/generations/layers/wikitext/layer-04.jsonl", ["continuation"], "generations")
    assert [row["continuation"] for row in added] == [row["continuation"] for row in sweep]
    assert added[0]["settings"]["expert"] == "head4"
    added_acd = json.loads(Path("data/compare_heads/acd/benchmarks.json").read_text())
    contrast = added_acd["lambada"]["model"]["acd"]
    assert (contrast["expert"], contrast["amateur"], contrast["alpha"]) == ("head4", "head2", 0.1)

    document = json.loads(Path("metrics/compare_heads.json").read_text())
    table = document["table"]
    layers = json.loads(Path("metrics/benchmarks/lambada_layers.json").read_text())["results"]["lambada_local"]
    named_acd = json.loads(Path("metrics/benchmarks/wikitext_acd.json").read_text())["results"]["wikitext_local"]
    assert table["original"]["lambada_accuracy"] == layers["lens4"]["acc"]
    assert table["new"]["lambada_perplexity"] == layers["head4"]["perplexity"]
    assert table["original+acd"]["wikitext_perplexity"] == named_acd["acd"]["word_perplexity"]
    assert table["new+acd"]["wikitext_perplexity"] != table["original+acd"]["wikitext_perplexity"]
    assert all(value is not None for row in table.values() for value in row.values())
    assert document["settings"]["n_prompts"] == 2
    assert "| L-4new+ACD |" in Path("metrics/compare_heads.md").read_text()

    run("generation_table.py")
    point = json.loads(Path("metrics/plots/generation_acd.json").read_text())
    acd_greedy = json.loads(Path("metrics/generation.json").read_text())["table"]["greedy"]["wikitext"]["acd"]
    assert [(row["layer"], row["diversity"]) for row in point] == [(4, acd_greedy["diversity"])]
