"""More amateurs: a separate small LM (contrastive decoding), a dynamic amateur exit (DoLa-style), the temperature.

Each is checked against the contrast computed from independently run models and exits, and
through generate() (with and without KV cache), lm-eval, the CLI and the params schema.
"""

from __future__ import annotations

import json
import math
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

import acd
from acd.core.amateur_model import CACHE, PairCache
from acd.errors import UsageError
from acd.core.heads import ExitHeads
from acd.core.model import DynamicAmateur, Exit, ModelAmateur
from acd.core.spec import ContrastSpec
from acd.pipeline.params import Decoding, build, pick, read_params
from acd.tools.tiny import make_tiny_model
from test_cli import run_acd
from test_model import independent_exits

REPO = Path(__file__).resolve().parents[1]
TEXT = ["The quick brown fox jumps over the lazy dog because", "Once upon a time"]
# Prompts on which an amateur cache left unreordered changes what beam search returns (checked by hand).
BEAM_PROMPTS = ["In 1990 the city of", "She said that"]


@pytest.fixture(scope="module")
def small_amateur(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller model (2 layers, width 16) with the same GPT-2 tokenizer as the tiny experts."""
    return make_tiny_model(tmp_path_factory.mktemp("amateur"), n_layers=2, d_model=16, seed=1)


def plain(model_dir: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(model_dir).eval()


# ---- amateur = a separate model ------------------------------------------------------------


@pytest.mark.parametrize("keep_tail", [True, False])
def test_model_amateur_forward_is_the_contrast_of_both_models(
    tiny_gpt2: Path, small_amateur: Path, keep_tail: bool
) -> None:
    model, tokenizer = acd.load(tiny_gpt2, amateur_model=small_amateur, amateur_temperature=0.5, keep_tail=keep_tail,
                                device="cpu")
    assert model.acd_contrast.amateur == ModelAmateur(str(small_amateur))
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits
        expected = acd.acd_log_probs(plain(tiny_gpt2)(**batch).logits, plain(small_amateur)(**batch).logits / 0.5,
                                     alpha=0.1, keep_tail=keep_tail)
    torch.testing.assert_close(logits, expected, atol=2e-5, rtol=1e-5)
    # Temperature and tail really change the distribution, so the comparison above can fail.
    with torch.no_grad():
        other = acd.acd_log_probs(plain(tiny_gpt2)(**batch).logits, plain(small_amateur)(**batch).logits, alpha=0.1)
    assert not torch.allclose(logits, other, atol=1e-3)


@pytest.mark.parametrize(
    "strategy",
    [{"do_sample": False}, {"num_beams": 4, "num_return_sequences": 2, "do_sample": False},
     {"do_sample": True, "top_k": 50}],
    ids=["greedy", "beam", "top-k"],
)
def test_model_amateur_generate_with_cache_equals_without(tiny_gpt2: Path, small_amateur: Path, strategy: dict) -> None:
    model, tokenizer = acd.load(tiny_gpt2, amateur_model=small_amateur, amateur_temperature=0.5, device="cpu")
    batch = tokenizer(BEAM_PROMPTS, return_tensors="pt", padding=True, padding_side="left")

    def run(use_cache: bool) -> object:
        torch.manual_seed(0)
        return model.generate(**batch, max_new_tokens=15, use_cache=use_cache, pad_token_id=tokenizer.pad_token_id,
                              return_dict_in_generate=True, **strategy)

    cached, uncached = run(True), run(False)
    torch.testing.assert_close(cached.sequences, uncached.sequences, rtol=0, atol=0)
    # The amateur really kept (and, for beams, reordered) its own cache beside the expert's.
    cache = getattr(cached, CACHE)
    assert isinstance(cache, PairCache)
    assert cache.amateur.get_seq_length() == cache.get_seq_length() > 0


def test_unreordered_amateur_cache_would_change_beam_search(
    tiny_gpt2: Path, small_amateur: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The beam test above can fail: reordering only the expert's cache changes the beams on these prompts."""
    from transformers import DynamicCache

    model, tokenizer = acd.load(tiny_gpt2, amateur_model=small_amateur, amateur_temperature=0.5, device="cpu")
    batch = tokenizer(BEAM_PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    kwargs = {"max_new_tokens": 15, "num_beams": 4, "num_return_sequences": 2, "do_sample": False,
              "pad_token_id": tokenizer.pad_token_id}
    uncached = model.generate(**batch, use_cache=False, **kwargs)
    monkeypatch.setattr(PairCache, "reorder_cache", DynamicCache.reorder_cache)
    assert not torch.equal(model.generate(**batch, use_cache=True, **kwargs), uncached)


def test_model_amateur_needs_the_same_vocabulary(tiny_gpt2: Path, tmp_path: Path) -> None:
    other = make_tiny_model(tmp_path / "other", n_layers=2, d_model=16)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["<extra_token>"])
    tokenizer.save_pretrained(other)
    with pytest.raises(UsageError, match=r"amateur_model='.*other' does not share the expert's tokenizer"):
        acd.load(tiny_gpt2, amateur_model=other, device="cpu")
    with pytest.raises(UsageError, match=r"amateur_model='.*missing' cannot be loaded"):
        acd.load(tiny_gpt2, amateur_model=tmp_path / "missing", device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amateur": "model"}, r"amateur_model is missing: amateur='model' needs"),
        ({"amateur": "lens", "amateur_model": "gpt2", "layer": 2},
         r"amateur_model='gpt2' is not allowed with amateur='lens'"),
        ({"amateur_model": "gpt2", "layer": "dynamic", "candidate_layers": [1]},
         r"layer='dynamic' is not allowed with amateur='model'"),
        ({"layer": "dynamic"}, r"candidate_layers is missing"),
        ({"layer": 2, "candidate_layers": [1]}, r"candidate_layers=\[1\] is not allowed with layer=2"),
        ({"layer": "dynamc"}, r"layer='dynamc' is out of range"),
        ({"layer": "dynamic", "candidate_layers": [0]}, r"candidate_layers=\[0\] is not allowed"),
        ({"layer": "dynamic", "candidate_layers": [1, 3], "amateur": "head"},
         r"candidate_layers=\[1, 3\] has no trained head for layers \[1, 3\]"),
        ({"layer": "dynamic", "candidate_layers": [2, 9], "amateur": "lens"}, r"layer=9 is out of range"),
        ({"layer": 2, "amateur_temperature": float("nan")}, r"amateur_temperature=nan is not allowed"),
    ],
)
def test_bad_amateur_settings_are_one_line_errors(
    tiny_gpt2: Path, gpt2_heads: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        acd.load(tiny_gpt2, heads=gpt2_heads, device="cpu", **kwargs)


# ---- amateur = the dynamic exit ------------------------------------------------------------


def jsd(log_p: torch.Tensor, log_q: torch.Tensor) -> float:
    """Jensen-Shannon divergence written out in probabilities (not the library's log-space code)."""
    p, q = log_p.detach().double().exp(), log_q.detach().double().exp()
    m = (p + q) / 2
    return float(0.5 * (p * (p / m).log()).nansum() + 0.5 * (q * (q / m).log()).nansum())


# Expert and candidates for which the tiny models' choice varies by position (the original expert is
# near-uniform, so from it the first lens is always furthest).
@pytest.mark.parametrize(
    ("expert", "amateur", "candidates"), [("new", "lens", [1, 2, 3]), ("original", "head", [1, 2])]
)
def test_dynamic_forward_equals_per_position_selection(
    tiny_any: Path, heads_for, expert: str, amateur: str, candidates: list
) -> None:
    heads_dir = heads_for(tiny_any)
    model, tokenizer = acd.load(tiny_any, heads=heads_dir, layer="dynamic", candidate_layers=candidates,
                                amateur=amateur, expert=expert, amateur_temperature=0.7, device="cpu")
    assert model.acd_contrast.amateur == DynamicAmateur(tuple(Exit(c, amateur) for c in candidates))
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    ref = independent_exits(tiny_any, heads_dir, batch.input_ids, batch.attention_mask)
    expert = ref["original"] if expert == "original" else ExitHeads.load(heads_dir)[4](ref["final_normed"])
    exits = [ref[amateur](layer) for layer in candidates]
    chosen = set()
    for row in range(expert.shape[0]):
        for position in range(expert.shape[1]):
            log_e = torch.log_softmax(expert[row, position], -1)
            divergences = [jsd(log_e, torch.log_softmax(exit[row, position], -1)) for exit in exits]
            best = max(range(len(exits)), key=divergences.__getitem__)
            chosen.add(best)
            expected = acd.acd_log_probs(expert[row, position], exits[best][row, position] / 0.7, alpha=0.1)
            torch.testing.assert_close(logits[row, position], expected, atol=2e-5, rtol=1e-5)
    assert len(chosen) > 1, "every position picked the same candidate: the test could not tell selection apart"


def test_dynamic_generate_with_cache_equals_without(tiny_gpt2: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, layer="dynamic", candidate_layers="1+2+3", device="cpu")
    batch = tokenizer(BEAM_PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    runs = [model.generate(**batch, max_new_tokens=10, do_sample=False, use_cache=use_cache,
                           pad_token_id=tokenizer.pad_token_id) for use_cache in (True, False)]
    assert torch.equal(*runs)


# ---- lm-eval ---------------------------------------------------------------------------------


def manual_loglikelihood(expert: Path, amateur: Path, tokenizer: object, context: str, continuation: str) -> float:
    whole = tokenizer(context + continuation).input_ids
    n_context = len(tokenizer(context).input_ids)
    ids = torch.tensor([whole])
    with torch.no_grad():
        log_p = acd.acd_log_probs(plain(expert)(ids).logits, plain(amateur)(ids).logits / 0.5, alpha=0.1,
                                  keep_tail=False)
    targets = torch.tensor(whole[n_context:])
    return float(log_p[0, n_context - 1 : -1].gather(-1, targets[:, None]).sum())


@pytest.mark.parametrize("exits", [None, "acd+lens4"])
def test_lm_eval_scores_the_model_amateur(tiny_gpt2: Path, small_amateur: Path, exits: str | None) -> None:
    from lm_eval.api.instance import Instance

    from acd.eval.lm_eval_model import ACDLM, parse_model_args

    args = parse_model_args(f"pretrained={tiny_gpt2},amateur_model={small_amateur},amateur_temperature=0.5,"
                            f"keep_tail=false,batch_size=2" + (f",exits={exits}" if exits else ""))
    lm = ACDLM(device="cpu", **args)
    pairs = [("The cat sat on the", " mat"), ("Once upon a", " time there was"), ("A", " b c")]
    requests = [Instance("loglikelihood", {}, pair, index) for index, pair in enumerate(pairs)]
    answers = lm.loglikelihood(requests, disable_tqdm=True)
    for (context, continuation), (log_likelihood, _) in zip(pairs, answers):
        expected = manual_loglikelihood(tiny_gpt2, small_amateur, lm.tokenizer, context, continuation)
        assert log_likelihood == pytest.approx(expected, rel=1e-4), (context, continuation)
    assert math.isfinite(sum(answer[0] for answer in answers))


# ---- params, DVC, CLI --------------------------------------------------------------------------


def test_params_yaml_keeps_the_paper_defaults_and_checks_the_new_knobs() -> None:
    decoding = pick(read_params(REPO / "params.yaml"), Decoding)
    assert (decoding.amateur_temperature, decoding.keep_tail, decoding.amateur_model, decoding.candidate_layers) == (
        1.0, True, None, []
    )
    spec = decoding.spec()
    assert spec.amateur_model is None and spec.candidate_layers is None
    base = {"model": "m"}
    for value in (0, -1.0, float("inf"), True):
        with pytest.raises(UsageError, match="amateur_temperature="):
            build(Decoding, {**base, "amateur_temperature": value})
    with pytest.raises(UsageError, match="amateur_model is missing"):
        build(Decoding, {**base, "amateur": "model"})
    with pytest.raises(UsageError, match=r"candidate_layers is missing: layer='dynamic'"):
        build(Decoding, {**base, "layer": "dynamic"})
    with pytest.raises(UsageError, match="layer='dyn' is not allowed"):
        build(Decoding, {**base, "layer": "dyn"})
    dynamic = build(Decoding, {**base, "layer": "dynamic", "candidate_layers": [4, 8]})
    assert dynamic.spec().candidate_layers == (4, 8)
    cd = build(Decoding, {**base, "amateur": "model", "amateur_model": "gpt2", "amateur_temperature": 0.5,
                          "keep_tail": False, "candidate_layers": [3]})
    assert cd.spec() == ContrastSpec(layer=12, alpha=0.1, expert="new", amateur="model", amateur_temperature=0.5,
                                     keep_tail=False, amateur_model="gpt2")


def test_only_the_acd_stages_read_the_contrast_knobs() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    knobs = {"amateur_temperature", "keep_tail", "amateur_model", "candidate_layers", "min_candidates"}
    for name, stage in stages.items():
        params = {p for p in stage.get("params", []) if isinstance(p, str)}
        # check_params declares every param: it only checks them, and its output never changes.
        readers = ("generate_acd", "benchmark_acd", "compare_heads_acd", "check_params")
        assert (knobs <= params) == (name in readers), name
    demo = yaml.safe_load((REPO / "src/acd/data/demo/params.yaml").read_text())
    assert knobs <= set(demo)


def test_cli_generate_with_each_amateur(tiny_gpt2: Path, small_amateur: Path) -> None:
    for extra in (["--amateur-model", str(small_amateur), "--amateur-temperature", "0.5", "--no-keep-tail"],
                  ["--layer", "dynamic", "--candidate-layers", "1,2,3", "--strategy", "beam"]):
        result = run_acd("generate", "The cat sat on", "--model", str(tiny_gpt2), "--max-new-tokens", "4", *extra)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("The cat sat on") and len(result.stdout) > len("The cat sat on\n")
    result = run_acd("generate", "Hi", "--model", str(tiny_gpt2), "--layer", "2", "--amateur-temperature", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: amateur_temperature=0.0 is not allowed")


@pytest.mark.parametrize(
    "knobs",
    [{"amateur": "model", "amateur_temperature": 0.5, "keep_tail": False},
     {"amateur": "head", "layer": "dynamic", "candidate_layers": [2, 4]}],
    ids=["model", "dynamic"],
)
def test_generate_acd_stage_with_each_amateur(
    tiny_gpt2: Path, gpt2_heads: Path, small_amateur: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    knobs: dict,
) -> None:
    shutil.copytree(gpt2_heads, tmp_path / "models" / "heads")
    params = {
        "model": str(tiny_gpt2), "alpha": 0.1, "layer": 2, "expert": "new", "seed": 0,
        "amateur_model": str(small_amateur), **knobs,
        "prompts": {"n_prompts": 2, "prompt_words": 32, "min_words": 64,
                    "domains": {"wikitext": {"files": ["acd-data:sample/wikitext.jsonl"]}}},
        "generation": {"strategies": ["beam"], "max_new_tokens": 4, "batch_size": 2},
    }
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    monkeypatch.chdir(tmp_path)
    for argv in (["prompts.py"], ["generate.py", "acd", "beam"]):
        monkeypatch.setattr(sys, "argv", argv)
        runpy.run_path(str(REPO / "stages" / argv[0]), run_name="__main__")
    rows = [json.loads(line) for line in Path("data/generations/acd/beam/wikitext.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["n_tokens"] > 0 for row in rows)
    expected = f"model:{small_amateur}" if knobs["amateur"] == "model" else "dynamic:head2+head4"
    assert {row["settings"]["amateur"] for row in rows} == {expected}
    assert rows[0]["settings"]["amateur_temperature"] == knobs.get("amateur_temperature", 1.0)


def test_lm_eval_exits_pass_scores_the_dynamic_amateur_as_the_model_does(
    tiny_gpt2: Path, gpt2_heads: Path
) -> None:
    from lm_eval.api.instance import Instance

    from acd.eval.lm_eval_model import ACDLM, parse_model_args

    base = f"pretrained={tiny_gpt2},heads={gpt2_heads},expert=original,layer=dynamic,candidate_layers=2+4,batch_size=2"
    pairs = [("The cat sat on the", " mat"), ("Once upon a", " time there was"), ("A", " b c")]
    requests = [Instance("loglikelihood", {}, pair, index) for index, pair in enumerate(pairs)]

    def answers(extra: str) -> list:
        return ACDLM(device="cpu", **parse_model_args(base + extra)).loglikelihood(requests, disable_tqdm=True)

    whole, one_pass, plain_expert = answers(""), answers(",exits=acd+lens4"), answers(",exits=lens4+acd")
    for ours, theirs, expert in zip(one_pass, whole, plain_expert):
        assert ours[0] == pytest.approx(theirs[0], rel=1e-4) and ours[1] == theirs[1]
        assert ours[0] != pytest.approx(expert[0], rel=1e-3)  # the contrast changes the score
