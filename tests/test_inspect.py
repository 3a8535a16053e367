"""`acd inspect`: every exit listed, the numbers shown are the library's, figures written, bad input refused."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch
from transformers import AutoModelForCausalLM

import acd
from acd.core.architectures import final_norm
from acd.tools.cli import main
from acd.core.contrast import plausible_mask
from acd.core.heads import ExitHeads
from acd.tools.inspection import ACD, AMATEUR, EXPERT, inspect_generation, inspect_prompt
from acd.tools.inspection_figure import DPI, figure_size
from acd.tools.inspection_report import format_prob, visible

PROMPT = "The cat sat on the"
TOP = 5


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The console entry point in this process (a subprocess costs seconds of imports)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def reference_exits(model_dir: Path, heads_dir: Path, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Next-token probabilities of every exit from a plain transformers model, computed here by hand."""
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    heads = ExitHeads.load(heads_dir)
    with torch.no_grad():
        out = base(input_ids=ids, output_hidden_states=True)
        norm = final_norm(base)
        n_layers = len(out.hidden_states) - 1
        states = {layer: norm(out.hidden_states[layer]) for layer in range(1, n_layers)}
        states[n_layers] = out.hidden_states[n_layers]  # already normed (transformers 5)
        probs = {f"lens{layer}": torch.softmax(base.lm_head(h), -1)[0] for layer, h in states.items()}
        probs.update({f"head{layer}": torch.softmax(heads[layer](states[layer]), -1)[0] for layer in heads.exit_layers})
    return probs


def test_numbers_equal_the_library_functions(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, alpha=0.1, device="cpu")
    inspection = inspect_prompt(model, tokenizer, PROMPT, top=TOP, positions="all")
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    assert len(inspection.steps) == ids.shape[1]
    assert [str(e) for e in inspection.exits] == ["lens1", "head2", "lens2", "lens3", "head4", "lens4"]
    reference = reference_exits(tiny_gpt2, gpt2_heads, ids)
    with torch.no_grad():
        acd_probs = model(ids).logits[0].exp()  # the ACD model's own forward
    expert, amateur = reference["head4"], reference["head2"]
    for step in inspection.steps:
        p = step.position
        for name, ranked in step.exits.items():
            values, top_ids = reference[name][p].topk(TOP)
            assert list(ranked.token_ids) == top_ids.tolist(), name
            torch.testing.assert_close(torch.tensor(ranked.probs), values, rtol=1e-4, atol=1e-7)
        for ranked, probs in ((step.expert, expert[p]), (step.amateur, amateur[p]), (step.acd, acd_probs[p])):
            torch.testing.assert_close(torch.tensor(ranked.probs), probs.topk(TOP).values, rtol=1e-4, atol=1e-7)
            assert probs[list(ranked.token_ids)].tolist() == pytest.approx(ranked.probs, rel=1e-4)
        rows = ((EXPERT, expert[p]), (AMATEUR, amateur[p]), (ACD, acd_probs[p]), ("lens3", reference["lens3"][p]))
        for key, probs in rows:
            assert step.candidate_probs[key] == pytest.approx(probs[list(step.candidates)].tolist(), rel=1e-4, abs=1e-9)
        mask = plausible_mask(torch.log(expert[p]), 0.1)
        assert step.plausible_size == int(mask.sum())
        assert step.plausible == {t for t in inspection.tokens if mask[t]}
        assert step.greedy_plain == int(expert[p].argmax()) and step.greedy_acd == int(acd_probs[p].argmax())
        assert set(step.expert.token_ids) <= set(step.candidates) and set(step.acd.token_ids) <= set(step.candidates)


def test_table_lists_every_exit_with_the_numbers_shown(
    tiny_gpt2: Path, gpt2_heads: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_main(capsys, "inspect", PROMPT, "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                              "--layer", "2", "--top", str(TOP), "--device", "cpu")
    assert code == 0, err
    cells = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    rows = {row[1].strip(): row[2:-1] for row in cells}
    assert set(rows) == {"lens1", "head2 (amateur)", "lens2", "lens3", "head4 (expert)", "lens4",
                         "expert head4", "amateur head2", "ACD (alpha=0.1)"}
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    step = inspect_prompt(model, tokenizer, PROMPT, top=TOP).steps[0]
    tokens = {t: visible(tokenizer.decode([t])) for t in _shown_ids(step)}
    expected = {"lens1": step.exits["lens1"], "head4 (expert)": step.exits["head4"], "ACD (alpha=0.1)": step.acd,
                "expert head4": step.expert, "amateur head2": step.amateur}
    for name, ranked in expected.items():
        cells = [cell.strip() for cell in rows[name]]
        for cell, token, prob in zip(cells, ranked.token_ids, ranked.probs, strict=True):
            text, shown = cell.rsplit(" ", 1)
            assert text.rstrip("*") == tokens[token] and shown == format_prob(prob)
            assert float(shown) == pytest.approx(prob, rel=0.06, abs=6e-4)
    marked = [cell.strip().rsplit(" ", 1)[0].endswith("*") for cell in rows["expert head4"]]
    assert marked == [t in step.plausible for t in step.expert.token_ids] and any(marked)
    assert f"greedy ACD: {visible(tokenizer.decode([step.greedy_acd]))!r}" in out


def _shown_ids(step) -> set[int]:
    return set(step.candidates) | {t for r in step.exits.values() for t in r.token_ids} | set(step.amateur.token_ids)


def test_exit_choice_limits_rows(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    assert set(inspect_prompt(model, tokenizer, PROMPT, exits="head").steps[0].exits) == {"head2", "head4"}
    lens_only, _ = acd.load(tiny_gpt2, layer=2, device="cpu")
    lens_rows = inspect_prompt(lens_only, tokenizer, PROMPT, exits="lens").steps[0].exits
    assert set(lens_rows) == {"lens1", "lens2", "lens3", "lens4"}
    with pytest.raises(acd.UsageError, match="exits='head' is not allowed without trained heads"):
        inspect_prompt(lens_only, tokenizer, PROMPT, exits="head")


@pytest.mark.parametrize("positions", ["last", "all"])
def test_png_has_the_expected_size(
    tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], positions: str
) -> None:
    out = tmp_path / "fig.png"
    code, _, err = run_main(capsys, "inspect", PROMPT, "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                            "--layer", "2", "--top", "4", "--positions", positions, "--out", str(out),
                            "--device", "cpu")
    assert code == 0, err
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    width, height = figure_size(inspect_prompt(model, tokenizer, PROMPT, top=4, positions=positions))
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (round(height * DPI), round(width * DPI))
    assert image[..., :3].std() > 0.05  # drawn, not blank
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temp file left


def test_html_embeds_figure_and_escapes_text(
    tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fig.html"
    prompt = "A <script>alert(1)</script> & cat"
    code, _, err = run_main(capsys, "inspect", prompt, "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                            "--layer", "2", "--top", "4", "--out", str(out), "--device", "cpu")
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; cat" in page
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))
    assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[2] == 4
    for name in ("lens1", "head2 (amateur)", "head4 (expert)", "ACD (alpha=0.1)"):
        assert f"<td>{name}</td>" in page or f'<td class="summary">{name}</td>' in page


def test_generate_pages_plain_and_acd_side_by_side(
    tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, tokenizer = acd.load(tiny_gpt2, heads=gpt2_heads, layer=2, device="cpu")
    contrast = model.acd_contrast
    generation = inspect_generation(model, tokenizer, PROMPT, 6, top=4)
    assert model.acd_contrast == contrast  # the plain run does not leave the model plain
    plain_model, _ = acd.load(tiny_gpt2, heads=gpt2_heads, device="cpu")
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    expected_plain = plain_model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert list(generation.plain_ids) == expected_plain[0, ids.shape[1]:].tolist()
    steps = generation.inspection.steps
    assert [s.greedy_acd for s in steps] == list(generation.acd_ids)  # each step saw what generate saw
    assert generation.changed_steps == [i for i, s in enumerate(steps) if s.changed]
    assert generation.changed_steps and generation.plain_ids[0] == steps[0].greedy_plain

    out = tmp_path / "steps.html"
    code, stdout, err = run_main(capsys, "inspect", PROMPT, "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                                 "--layer", "2", "--top", "4", "--generate", "6", "--out", str(out), "--device", "cpu")
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert page.count('<section id="step-') == len(steps)
    assert page.count("<mark>") == len(generation.changed_steps)
    assert page.count("<section id=\"step-1\" class=changed>") == 1
    assert generation.acd_text == tokenizer.decode(list(generation.acd_ids)) and generation.acd_text in stdout
    assert generation.plain_text == tokenizer.decode(list(generation.plain_ids)) and generation.plain_text in stdout
    assert f"{len(generation.changed_steps)} of 6 steps changed" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--out", "fig.jpg"), "error: out='fig.jpg' is not allowed: use a .png, .svg, .pdf, .html file"),
        (("--generate", "3", "--out", "f.png"), "error: out='f.png' is not allowed with --generate: use a .html file"),
        (("--top", "0"), "error: top=0 is not allowed"),
        (("--positions", "first"), "error: positions='first' is not allowed: use one of last, all"),
        (("--alpha", "2"), "error: alpha=2.0 is not allowed"),
        (("--layer", "3"), "error: layer=3 has no trained head"),
    ],
)
def test_bad_input_is_one_line(
    tiny_gpt2: Path, gpt2_heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, args, message
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "inspect", PROMPT, "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                              "--layer", "2", *args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # model loading may draw a progress bar
    assert code == 2 and len(errors) == 1 and errors[0].startswith(message), err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_bad_layer_from_the_console_script(tiny_gpt2: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acd.tools.cli", "inspect", PROMPT, "--model", str(tiny_gpt2), "--layer", "9",
         "--out", str(tmp_path / "fig.png")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: layer=9 is out of range: allowed 1..4 for this model (amateur)"], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "fig.png").exists()


def test_every_architecture_last_lens_is_the_model(tiny_any: Path) -> None:
    model, tokenizer = acd.load(tiny_any, layer=2, amateur="lens", device="cpu")
    inspection = inspect_prompt(model, tokenizer, PROMPT, top=3, positions="all", exits="lens")
    base = AutoModelForCausalLM.from_pretrained(tiny_any).eval()
    with torch.no_grad():
        probs = torch.softmax(base(tokenizer(PROMPT, return_tensors="pt").input_ids).logits[0], -1)
    for step in inspection.steps:
        assert list(step.exits["lens4"].token_ids) == probs[step.position].topk(3).indices.tolist()
        assert step.exits["lens4"].probs == pytest.approx(probs[step.position].topk(3).values.tolist(), rel=1e-4)
