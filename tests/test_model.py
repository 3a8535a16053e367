"""The ACD model: a drop-in causal LM whose logits are p_ACD of independently computed exits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import acd
import acd.core.model
import acd.tools.tiny
from acd.core.architectures import architecture_of, final_norm
from acd.pipeline.decoding import STRATEGIES, generate_batch
from acd.core.heads import ExitHeads

TEXT = ["The quick brown fox jumps over the lazy dog because", "Once upon a time"]


def independent_exits(model_dir: Path, heads_dir: Path, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Expert/amateur logits from a plain transformers model plus forward hooks on its blocks."""
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    blocks = base.get_submodule(architecture_of(base).layers)
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        block.register_forward_hook(lambda _m, _i, out, n=n: captured.__setitem__(n, out[0] if isinstance(out, tuple) else out))
        for n, block in enumerate(blocks, start=1)
    ]
    with torch.no_grad():
        logits = base(input_ids=input_ids, attention_mask=attention_mask).logits
    for hook in hooks:
        hook.remove()
    heads = ExitHeads.load(heads_dir)
    norm = final_norm(base)
    with torch.no_grad():
        return {
            "original": logits,
            "lens": lambda layer: base.lm_head(norm(captured[layer])),
            "head": lambda layer: heads[layer](norm(captured[layer])),
            "final_normed": norm(captured[len(blocks)]),
        }


@pytest.mark.parametrize(("expert", "amateur", "layer"), [("original", "head", 2), ("new", "head", 1), ("original", "lens", 2), ("new", "lens", 1)])
def test_forward_equals_contrast_of_independent_exits(tiny_any: Path, heads_for, expert: str, amateur: str, layer: int) -> None:
    heads_dir = heads_for(tiny_any)
    model, tokenizer = acd.load(tiny_any, heads=heads_dir, layer=layer, alpha=0.1, expert=expert, amateur=amateur, device="cpu")
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    ref = independent_exits(tiny_any, heads_dir, batch.input_ids, batch.attention_mask)
    with torch.no_grad():
        expert_logits = ref["original"] if expert == "original" else ExitHeads.load(heads_dir)[4](ref["final_normed"])
        expected = acd.acd_log_probs(expert_logits, ref[amateur](layer), alpha=0.1)
    assert logits.shape == (2, batch.input_ids.shape[1], 50257)
    torch.testing.assert_close(logits, expected, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(logits.shape[:2]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_model_computes_acd_in_float32(tiny_gpt2: Path, gpt2_heads: Path, dtype: torch.dtype) -> None:
    """The body and heads run in half precision; the contrast itself is float32 (finite, normalised)."""
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, dtype=dtype, device="cpu")
    assert model.dtype == dtype and model.acd_heads[2].weight.dtype == dtype
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
        body = acd.core.model.run_body(model, input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        expert = acd.core.model.exit_logits(model, model.acd_heads, acd.Exit(4, "head"), body, slice(None))
        amateur = acd.core.model.exit_logits(model, model.acd_heads, acd.Exit(2, "head"), body, slice(None))
    assert expert.dtype == dtype and logits.dtype == torch.float32 and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, acd.acd_log_probs(expert.float(), amateur.float()), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits.logsumexp(-1), torch.zeros(logits.shape[:2]), atol=1e-5, rtol=0)


def test_plain_model_is_the_original(tiny_gpt2: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, device="cpu")
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    ids = tokenizer(TEXT[0], return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, base(ids).logits)


def test_defaults_follow_the_heads(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    with_heads, _ = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    assert (str(with_heads.acd_contrast.expert), str(with_heads.acd_contrast.amateur)) == ("head4", "head2")
    without, _ = acd.load(tiny_gpt2, layer=2, device="cpu")
    assert (str(without.acd_contrast.expert), str(without.acd_contrast.amateur)) == ("lens4", "lens2")


def test_only_last_position_is_computed_during_generation(
    tiny_gpt2: Path, gpt2_heads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import acd.core.model

    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    shapes: list[tuple[int, ...]] = []
    project = acd.core.model.project

    def recording(head: torch.nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
        logits = project(head, hidden)
        if head is model.acd_heads[2]:
            shapes.append(tuple(logits.shape))
        return logits

    monkeypatch.setattr(acd.core.model, "project", recording)
    generate_batch(model, tokenizer, TEXT, "greedy", max_new_tokens=3)
    assert shapes and all(shape[:2] == (2, 1) for shape in shapes)


def test_projection_of_a_few_rows_equals_the_linear_layer() -> None:
    from acd.core.model import FEW_ROWS, project

    head = torch.nn.Linear(16, 300, bias=True)
    for rows in (1, 3, FEW_ROWS + 1):
        hidden = torch.randn(1, rows, 16)
        torch.testing.assert_close(project(head, hidden), head(hidden))


def test_lens_pair_at_the_last_position_equals_the_full_forward(tiny_any: Path) -> None:
    """A generation step computes both lens exits in one product; it must give the same log-probs."""
    model, tokenizer = acd.load(tiny_any, layer=2, alpha=0.1, device="cpu")
    assert (str(model.acd_contrast.expert), str(model.acd_contrast.amateur)) == ("lens4", "lens2")
    batch = tokenizer(TEXT, return_tensors="pt", padding=True)
    with torch.no_grad():
        full = model(**batch).logits[:, -1:]
        last = model(**batch, logits_to_keep=1).logits
    assert last.shape == (2, 1, 50257)
    torch.testing.assert_close(last, full, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_generates(tiny_any: Path, heads_for, strategy: str) -> None:
    model, tokenizer = acd.load(tiny_any, heads=heads_for(tiny_any), layer=2, device="cpu")
    outputs = generate_batch(model, tokenizer, TEXT, strategy, max_new_tokens=6, seed=0)
    assert len(outputs) == 2 and all(isinstance(text, str) and text for text in outputs)
    assert outputs == generate_batch(model, tokenizer, TEXT, strategy, max_new_tokens=6, seed=0)


def test_greedy_with_cache_equals_without_and_follows_argmax(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    ids = tokenizer(TEXT[0], return_tensors="pt").input_ids
    cached = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=True, pad_token_id=50256)
    uncached = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=False, pad_token_id=50256)
    assert torch.equal(cached, uncached)
    manual = ids
    for _ in range(8):
        with torch.no_grad():
            manual = torch.cat([manual, model(manual).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, manual)


def test_acd_changes_greedy_choices(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, alpha=0.0, device="cpu")
    acd_text = generate_batch(model, tokenizer, TEXT, "greedy", max_new_tokens=8)
    model.set_contrast(amateur=None)
    assert acd_text != generate_batch(model, tokenizer, TEXT, "greedy", max_new_tokens=8)


def test_loss_is_the_acd_negative_log_likelihood(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    ids = tokenizer(TEXT[0], return_tensors="pt").input_ids
    with torch.no_grad():
        out = model(ids, labels=ids)
    expected = -out.logits[0, :-1].gather(-1, ids[0, 1:, None]).mean()
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": 0}, r"layer=0 is out of range"),
        ({"layer": 9}, r"layer=9 is out of range: allowed 1\.\.4"),
        ({"layer": 3}, r"layer=3 has no trained head .*trained exits are \[2, 4\]"),
        ({"layer": 2, "alpha": 1.5}, r"alpha=1\.5 .* \[0, 1\]"),
        ({"layer": 2, "expert": "best"}, r"expert='best' is not allowed: use one of original, new"),
        ({"layer": 2, "amateur": "model2"}, r"amateur='model2' is not allowed"),
        ({"layer": 2, "amateur_temperature": 0}, r"amateur_temperature=0 is not allowed"),
    ],
)
def test_bad_settings_are_clear_errors(tiny_gpt2: Path, gpt2_heads: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(acd.UsageError, match=message):
        acd.load(tiny_gpt2, heads=gpt2_heads, device="cpu", **kwargs)


def test_new_expert_without_final_head_is_a_clear_error(tiny_gpt2: Path, tmp_path: Path) -> None:
    model, _ = acd.load(tiny_gpt2, device="cpu")
    ExitHeads.for_model(model, [2], base_model="tiny").save(tmp_path)
    with pytest.raises(acd.UsageError, match=r"layer=4 has no trained head for expert='head'"):
        acd.load(tiny_gpt2, heads=tmp_path, layer=2, expert="new", device="cpu")


def test_heads_for_another_model_are_rejected(tmp_path: Path, tiny_gpt2: Path) -> None:
    other = acd.tools.tiny.make_tiny_model(tmp_path / "wide", d_model=48)
    model, _ = acd.load(other, device="cpu")
    ExitHeads.for_model(model, [2, 4], base_model="wide").save(tmp_path / "heads")
    with pytest.raises(acd.UsageError, match=r"heads='.*heads' do not fit this model: they were trained for 'wide' "
                                             r"\(vocab 50257, hidden size 48"):
        acd.load(tiny_gpt2, heads=tmp_path / "heads", layer=2, device="cpu")


def test_heads_round_trip_and_truncation_is_caught(tmp_path: Path, gpt2_heads: Path) -> None:
    heads = ExitHeads.load(gpt2_heads)
    heads.save(tmp_path)
    again = ExitHeads.load(tmp_path / "heads.json")
    for layer in heads.exit_layers:
        torch.testing.assert_close(again[layer].weight, heads[layer].weight)
    weights = tmp_path / "heads.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(acd.UsageError, match=r"does not match the sha256"):
        ExitHeads.load(tmp_path)
    with pytest.raises(acd.UsageError, match=r"heads.json is missing"):
        ExitHeads.load(tmp_path / "nowhere")


def test_unloadable_model_names_the_param_and_the_offline_run(tmp_path: Path) -> None:
    from acd.core.loading import load_config, load_pretrained

    for loader in (load_pretrained, load_config):
        with pytest.raises(acd.UsageError,
                           match=r"^model='.*no-model' cannot be loaded .*point model at a local directory.*`acd demo`"):
            loader(tmp_path / "no-model")


def test_aligned_projection_equals_the_head_in_values_and_gradients() -> None:
    """`project` pads an unaligned vocabulary on a GPU (cuBLAS's fast kernels); forced here on the CPU."""
    from acd.core.model import ALIGN, project

    torch.manual_seed(0)
    for bias in (False, True):
        head = torch.nn.Linear(16, 3 * ALIGN + 5, bias=bias)
        hidden = torch.randn(2, 70, 16)
        plain = head(hidden)
        plain.square().sum().backward()
        expected = [parameter.grad.clone() for parameter in head.parameters()]
        head.zero_grad()
        aligned = project(head, hidden, aligned=True)
        assert aligned.shape == plain.shape
        torch.testing.assert_close(aligned, plain)
        aligned.square().sum().backward()
        for parameter, grad in zip(head.parameters(), expected):
            assert parameter.grad.shape == parameter.shape
            torch.testing.assert_close(parameter.grad, grad)
