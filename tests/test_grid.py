"""The layer × alpha grid from `dvc exp show --json`.

tests/data/exp_show_grid.json was recorded in an `acd demo` repository after
`dvc exp run --queue -S alpha=0.1,0.2 -S layer=2,4` and `dvc exp run --run-all`; only each run's
`deps` and `outs` (file hashes, unused here) were dropped to keep it small.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from acd.errors import UsageError
from acd.reports.grid import GridPoint, grid_points, markdown_tables, matrix, read_exp_show, runs, write_grid

from conftest import DATA

RECORDED = DATA / "exp_show_grid.json"


@pytest.fixture()
def exp_show() -> list[dict]:
    return json.loads(RECORDED.read_text())


def test_recorded_grid_has_one_point_per_cell_from_the_experiments(exp_show: list[dict]) -> None:
    assert [name for name, _ in runs(exp_show)] == ["genal-kina", "young-care", "slack-rort", "tacky-keep", "main"]
    points = grid_points(exp_show)
    # The baseline commit (layer 2, alpha 0.1) repeats tacky-keep's cell: the experiment names it.
    assert [(p.layer, p.alpha, p.name) for p in points] == [
        (2, 0.1, "tacky-keep"), (2, 0.2, "young-care"), (4, 0.1, "slack-rort"), (4, 0.2, "genal-kina")]
    assert [p.lambada_acc for p in points] == [0.0, 0.0, 0.0, 0.0]  # a tiny random model
    diversity = [round(p.greedy_diversity, 6) for p in points]
    assert diversity == [0.264991, 0.264991, 0.515824, 0.515824]
    assert [round(p.greedy_diversity, 6) for p in grid_points(exp_show, "mean")] == [0.158344, 0.158344, 0.388567,
                                                                                   0.388567]


def test_metric_values_go_to_their_cells(exp_show: list[dict]) -> None:
    state = exp_show[1]["experiments"][0]["revs"][0]  # genal-kina: layer 4, alpha 0.2
    results = state["data"]["metrics"]["metrics/benchmarks/lambada_acd.json"]["data"]["results"]
    results["lambada_local"]["acd"]["acc"] = 0.5
    results["lambada_extra"] = {"acd": {"acc": 0.25}}  # several LAMBADA tasks: their mean
    state["data"]["metrics"]["metrics/generation.json"]["data"]["table"]["greedy"]["wikitext"]["acd"]["diversity"] = 0.9
    assert matrix(grid_points(exp_show), "lambada_acc") == [[0.0, 0.0], [0.0, 0.375]]
    assert matrix(grid_points(exp_show), "greedy_diversity")[1][1] == 0.9


def test_unfinished_runs_are_left_out(exp_show: list[dict]) -> None:
    failed = copy.deepcopy(exp_show)
    failed[1]["experiments"][1]["revs"][0]["data"]["metrics"] = {}  # young-care (2, 0.2) without metrics
    failed[1]["experiments"][2]["revs"][0]["data"] = None  # slack-rort (4, 0.1) queued
    points = grid_points(failed)
    assert [(p.layer, p.alpha) for p in points] == [(2, 0.1), (4, 0.2)]
    table = markdown_tables(points, "wikitext")
    assert "| 2 | 0.000 | – |" in table and "| 4 | – | 0.000 |" in table


def test_markdown_tables(exp_show: list[dict]) -> None:
    assert markdown_tables(grid_points(exp_show), "wikitext") == (
        "**LAMBADA accuracy (ACD)**\n\n| layer \\ alpha | 0.1 | 0.2 |\n|---|---|---|\n"
        "| 2 | 0.000 | 0.000 |\n| 4 | 0.000 | 0.000 |\n\n"
        "**greedy diversity (ACD, wikitext)**\n\n| layer \\ alpha | 0.1 | 0.2 |\n|---|---|---|\n"
        "| 2 | 0.265 | 0.265 |\n| 4 | 0.516 | 0.516 |\n"
    )


def test_named_layers_sort_after_numbers() -> None:
    points = [GridPoint("dynamic", 0.1, "a", 0.5, 0.5), GridPoint(12, 0.1, "b", 0.4, 0.4),
              GridPoint(8, 0.1, "c", 0.3, 0.3)]
    assert matrix(points, "lambada_acc") == [[0.3], [0.4], [0.5]]


def test_bad_inputs(exp_show: list[dict], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^domain='wikipedia' is not allowed: the runs have greedy generations on "
                                         r"bookcorpus, wikinews, wikitext \(or use 'mean'\)"):
        grid_points(exp_show, "wikipedia")
    with pytest.raises(UsageError, match=r"^exp_json='.*missing.json' does not exist"):
        read_exp_show(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"^exp_json='.*bad.json' is not JSON"):
        read_exp_show(tmp_path / "bad.json")
    with pytest.raises(UsageError, match=r"^the experiments hold no finished run"):
        write_grid([], "wikitext", tmp_path / "grid.png", tmp_path / "grid.md")
    assert not (tmp_path / "grid.png").exists()


def test_cli_writes_heatmaps_and_tables(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    png, table = tmp_path / "grid.png", tmp_path / "grid.md"
    result = subprocess.run([sys.executable, "-m", "acd.tools.cli", "grid-plot", str(RECORDED), "--out", str(png),
                             "--table", str(table)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert table.read_text() in result.stdout and "| 4 | 0.516 | 0.516 |" in table.read_text()
    height, width, _ = imread(png).shape
    assert width > height > 100
    bad = subprocess.run([sys.executable, "-m", "acd.tools.cli", "grid-plot", str(RECORDED), "--domain", "x"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: domain='x' is not allowed")
    assert "Traceback" not in bad.stderr
