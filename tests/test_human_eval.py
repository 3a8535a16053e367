"""Pairwise human evaluation: Cohen's kappa, majority labels, and the export -> labels -> aggregate round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from acd.errors import UsageError
from acd.eval.human_eval import QUESTIONS, aggregate, cohen_kappa, export_sheet, majority_label
from acd.pipeline.jsonl import write_jsonl


def test_cohen_kappa_known_example() -> None:
    # 50 items: both yes 20, first yes/second no 5, first no/second yes 10, both no 15.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    # p_o = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.4
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(first, first) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement 1: undefined


def test_majority_label_ties_without_a_plurality() -> None:
    assert majority_label(["x", "x", "tie"]) == "x"
    assert majority_label(["x", "y", "tie"]) == "tie"
    assert majority_label(["x", "y"]) == "tie"
    assert majority_label(["tie", "tie", "x"]) == "tie"


def _generations(path: Path, system: str, n: int) -> Path:
    write_jsonl(path, [{"id": f"p{i}", "prompt": f"prompt {i}", "continuation": f"{system} text {i}"} for i in range(n)])
    return path


def test_export_fill_aggregate_round_trip(tmp_path: Path) -> None:
    a = _generations(tmp_path / "plain.jsonl", "plain", 12)
    b = _generations(tmp_path / "acd.pipeline.jsonl", "acd", 12)
    paths = export_sheet(a, b, tmp_path / "sheet", tmp_path / "key.json", n_items=10, seed=3, names=("plain", "acd"))
    assert paths["key"].parent != paths["csv"].parent  # the key is kept apart from what annotators get
    sheet = list(csv.DictReader(open(paths["csv"], encoding="utf-8")))
    key = json.loads(paths["key"].read_text())
    assert len(sheet) == 10 and "<section" in paths["html"].read_text()
    orders = {key["items"][row["item"]]["A"] for row in sheet}
    assert orders == {"plain", "acd"}  # order shuffled per item
    # The sheet never names the systems; the texts match the key's mapping.
    for row in sheet:
        assert row["text_a"].startswith(key["items"][row["item"]]["A"])
    # Same seed, same sheet.
    again = export_sheet(a, b, tmp_path / "again", tmp_path / "again.json", n_items=10, seed=3, names=("plain", "acd"))
    assert again["csv"].read_bytes() == paths["csv"].read_bytes()

    # Annotators 1 and 2 always prefer the acd text; annotator 3 says tie on fluency and acd otherwise.
    def fill(name: str, fluency_tie: bool) -> Path:
        path = tmp_path / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["item", *QUESTIONS])
            writer.writeheader()
            for row in sheet:
                acd_side = "A" if key["items"][row["item"]]["A"] == "acd" else "b"  # lower case is accepted
                writer.writerow({"item": row["item"], "fluency": "Tie" if fluency_tie else acd_side,
                                 "coherence": acd_side, "overall": acd_side})
        return path

    result = aggregate(tmp_path / "key.json", [fill("ann1", False), fill("ann2", False), fill("ann3", True)])
    assert result["questions"]["overall"]["distribution"] == {"plain": 0, "acd": 10, "tie": 0}
    assert result["questions"]["fluency"]["distribution"] == {"plain": 0, "acd": 10, "tie": 0}
    assert result["questions"]["overall"]["kappa"] is None  # everyone used one label: kappa undefined
    # Fluency: pair (1, 2) is undefined and skipped; pairs (1, 3) and (2, 3) never agree, by chance or not: 0.
    assert result["questions"]["fluency"]["kappa"] == pytest.approx(0.0)
    assert set(result["questions"]["coherence"]["majority"].values()) == {"acd"}


def test_bad_labels_are_one_line_errors(tmp_path: Path) -> None:
    a = _generations(tmp_path / "a.jsonl", "a", 3)
    b = _generations(tmp_path / "b.jsonl", "b", 3)
    with pytest.raises(UsageError, match=r"n_items=5 is more than the 3 prompts"):
        export_sheet(a, b, tmp_path / "s", tmp_path / "k.json", n_items=5)
    paths = export_sheet(a, b, tmp_path / "s", tmp_path / "k.json", n_items=2)
    sheet = list(csv.DictReader(open(paths["csv"], encoding="utf-8")))
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["item", *QUESTIONS])
        writer.writeheader()
        writer.writerow({"item": sheet[0]["item"], "fluency": "C", "coherence": "A", "overall": "A"})
    with pytest.raises(UsageError, match=r"fluency='C' is not allowed: use A, B or tie"):
        aggregate(paths["key"], [bad])
    with pytest.raises(UsageError, match=r"not a key file"):
        aggregate(tmp_path / "a.jsonl", [bad])
