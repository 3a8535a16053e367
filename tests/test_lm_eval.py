"""lm-eval scores the ACD model unchanged through HFLM, on a local LAMBADA-format task."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import acd
from conftest import DATA

TASK_YAML = """task: lambada_sample
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood
test_split: test
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture()
def lambada_task(tmp_path: Path) -> Path:
    (tmp_path / "lambada_sample.yaml").write_text(TASK_YAML.format(data=DATA / "lambada_sample.jsonl"))
    return tmp_path


def test_simple_evaluate_scores_the_acd_model(tiny_gpt2: Path, gpt2_heads: Path, lambada_task: Path) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    manager = TaskManager(include_path=str(lambada_task), include_defaults=False)
    results = simple_evaluate(
        model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4),
        tasks=["lambada_sample"],
        task_manager=manager,
    )["results"]["lambada_sample"]
    ppl, accuracy = results["perplexity,none"], results["acc,none"]
    assert math.isfinite(ppl) and ppl > 1 and 0 <= accuracy <= 1

    # lm-eval's perplexity is exp(-mean log p(target)) under the ACD distribution: recompute one way.
    import json

    docs = [json.loads(line)["text"] for line in (DATA / "lambada_sample.jsonl").read_text().splitlines()]
    total = 0.0
    for text in docs:
        context, target = text.rsplit(" ", 1)
        ctx_ids = tokenizer(context).input_ids
        tgt_ids = tokenizer(" " + target).input_ids
        ids = torch.tensor([ctx_ids + tgt_ids])
        with torch.no_grad():
            log_p = model(ids).logits[0, len(ctx_ids) - 1 : -1]
        total += log_p.gather(-1, torch.tensor(tgt_ids)[:, None]).sum().item()
    assert ppl == pytest.approx(math.exp(-total / len(docs)), rel=1e-4)
