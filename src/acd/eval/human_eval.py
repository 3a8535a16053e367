"""Pairwise human evaluation (paper App. D): export A/B sheets, read the filled labels back.

Each item shows a prompt and two continuations; which system is "A" is drawn per item
(seeded), and the mapping is written to a separate key file so annotators cannot see it.
Annotators answer ``fluency``, ``coherence`` and ``overall`` with A, B or tie. The aggregator
maps answers back to systems, takes the majority label per item (tie when the majority says
tie or no label has a strict plurality, as in the paper) and reports Cohen's kappa averaged
over annotator pairs per question.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acd.errors import UsageError
from acd.pipeline.generation import read_generations
from acd.io import atomic_path, write_json, write_text

QUESTIONS = ("fluency", "coherence", "overall")
ANSWERS = ("A", "B", "tie")
TIE = "tie"


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' labels on the same items; None when chance agreement is 1 (undefined)."""
    if len(first) != len(second):
        raise ValueError("both annotators must label the same items")
    if not first:
        return None
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_first, counts_second = Counter(first), Counter(second)
    expected = sum(counts_first[label] * counts_second[label] for label in counts_first) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def majority_label(labels: Sequence[str]) -> str:
    """The label with a strict plurality, else tie (so 1-1-1 or A-B gives tie)."""
    ranked = Counter(labels).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return TIE
    return ranked[0][0]


def export_sheet(
    system_a: str | os.PathLike[str],
    system_b: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    n_items: int = 40,
    seed: int = 0,
    names: tuple[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``sheet.csv`` and ``sheet.html`` for annotators and the key (kept apart) for the aggregator."""
    rows_a = {row["id"]: row for row in read_generations(system_a)}
    rows_b = {row["id"]: row for row in read_generations(system_b)}
    shared = [item for item in rows_a if item in rows_b]
    if n_items < 1:
        raise UsageError(f"n_items={n_items} is out of range: it must be >= 1")
    if len(shared) < n_items:
        raise UsageError(f"n_items={n_items} is more than the {len(shared)} prompts both generation files share")
    names = names or (str(system_a), str(system_b))
    rng = random.Random(seed)
    picked = sorted(rng.sample(shared, n_items))
    items, key = [], {"systems": list(names), "items": {}}
    for number, prompt_id in enumerate(picked, 1):
        swap = rng.random() < 0.5
        first, second = (rows_b, rows_a) if swap else (rows_a, rows_b)
        item = f"{number:03d}"
        items.append(
            {
                "item": item,
                "prompt": rows_a[prompt_id]["prompt"],
                "text_a": first[prompt_id]["continuation"],
                "text_b": second[prompt_id]["continuation"],
            }
        )
        key["items"][item] = {"id": prompt_id, "A": names[1] if swap else names[0], "B": names[0] if swap else names[1]}
    out_dir = Path(out_dir)
    sheet_csv, sheet_html = out_dir / "sheet.csv", out_dir / "sheet.html"
    with atomic_path(sheet_csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["item", "prompt", "text_a", "text_b", *QUESTIONS])
        writer.writeheader()
        for item in items:
            writer.writerow({**item, **{question: "" for question in QUESTIONS}})
    write_text(sheet_html, render_html(items))
    write_json(key_path, key)
    return {"csv": sheet_csv, "html": sheet_html, "key": Path(key_path)}


def render_html(items: Sequence[dict[str, str]]) -> str:
    """A self-contained page: each item with A/B/tie buttons per question and a button that saves the CSV."""
    blocks = []
    for item in items:
        choices = "".join(
            f"<p><b>{question}</b>: "
            + " ".join(
                f'<label><input type="radio" name="{item["item"]}-{question}" value="{answer}"> {answer}</label>'
                for answer in ANSWERS
            )
            + "</p>"
            for question in QUESTIONS
        )
        blocks.append(
            f'<section data-item="{item["item"]}"><h2>Item {item["item"]}</h2>'
            f'<p class="prompt">{html.escape(item["prompt"])}</p>'
            f'<div class="pair"><div><h3>A</h3><p>{html.escape(item["text_a"])}</p></div>'
            f'<div><h3>B</h3><p>{html.escape(item["text_b"])}</p></div></div>{choices}</section>'
        )
    questions = json.dumps(list(QUESTIONS))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Which continuation is better?</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:auto}}.prompt{{background:#eee;padding:.5em}}
.pair{{display:flex;gap:1em}}.pair>div{{flex:1;border:1px solid #ccc;padding:.5em}}section{{margin-bottom:2em}}</style>
</head><body>
<h1>Which continuation is better?</h1>
<p>For each prompt, compare continuation A and B on fluency, coherence (with the prompt) and overall quality.
Pick A, B or tie. Then press "Save labels" and send the downloaded labels.csv back.</p>
{''.join(blocks)}
<button id="save">Save labels</button>
<script>
const questions = {questions};
document.getElementById("save").onclick = () => {{
  const lines = [["item", ...questions].join(",")];
  for (const section of document.querySelectorAll("section")) {{
    const item = section.dataset.item;
    const answers = questions.map(q => {{
      const checked = section.querySelector(`input[name="${{item}}-${{q}}"]:checked`);
      return checked ? checked.value : "";
    }});
    lines.push([item, ...answers].join(","));
  }}
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lines.join("\\n") + "\\n"], {{type: "text/csv"}}));
  link.download = "labels.csv";
  link.click();
}};
</script></body></html>
"""


def read_labels(path: str | os.PathLike[str], items: Sequence[str]) -> dict[str, dict[str, str]]:
    """One annotator's answers: item -> question -> A|B|tie; every item and question must be answered."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels={str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in ("item", *QUESTIONS) if name not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"labels={str(path)!r} lacks column(s) {', '.join(missing)}: use the exported sheet")
        answers: dict[str, dict[str, str]] = {}
        for row in reader:
            item = (row["item"] or "").strip()
            for question in QUESTIONS:
                value = _normalized(row[question])
                if value not in ANSWERS:
                    raise UsageError(
                        f"labels={str(path)!r}: item {item} {question}={value!r} is not allowed: use A, B or tie"
                    )
                answers.setdefault(item, {})[question] = value
    unknown = sorted(set(answers) - set(items))
    absent = sorted(set(items) - set(answers))
    if unknown or absent:
        what = f"unknown item(s) {', '.join(unknown)}" if unknown else f"no answer for item(s) {', '.join(absent)}"
        raise UsageError(f"labels={str(path)!r} does not match the key: {what}")
    return answers


def _normalized(value: str | None) -> str:
    """Accept a/b/Tie as well: annotators type."""
    value = (value or "").strip()
    return TIE if value.lower() == TIE else value.upper() if value.lower() in ("a", "b") else value


def aggregate(key_path: str | os.PathLike[str], label_paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Majority labels in system names, their distribution, and mean pairwise Cohen's kappa, per question."""
    try:
        key = json.loads(Path(key_path).read_text(encoding="utf-8"))
        key_items: dict[str, dict[str, str]] = key["items"]
        systems: list[str] = key["systems"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise UsageError(f"key={str(key_path)!r} is not a key file written by `acd human-eval export`") from None
    if not label_paths:
        raise UsageError("labels: give at least one filled labels CSV")
    items = sorted(key_items)
    annotators = [read_labels(path, items) for path in label_paths]

    def as_system(item: str, answer: str) -> str:
        return answer if answer == TIE else key_items[item][answer]

    result: dict[str, Any] = {
        "systems": systems, "n_items": len(items), "n_annotators": len(annotators), "questions": {}
    }
    for question in QUESTIONS:
        labels = [[as_system(item, answers[item][question]) for item in items] for answers in annotators]
        majority = {item: majority_label([own[index] for own in labels]) for index, item in enumerate(items)}
        distribution = Counter(majority.values())
        kappas = [cohen_kappa(a, b) for a, b in itertools.combinations(labels, 2)]
        defined = [kappa for kappa in kappas if kappa is not None]
        result["questions"][question] = {
            "majority": majority,
            "distribution": {label: distribution.get(label, 0) for label in [*systems, TIE]},
            "kappa": sum(defined) / len(defined) if defined else None,
        }
    return result
