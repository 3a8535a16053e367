"""The console script: one-line continuations and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import acd.tools.demo
from acd.tools.cli import DEBUG_ENV, main


def run_acd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "acd.tools.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_help_lists_commands() -> None:
    result = run_acd("--help")
    assert result.returncode == 0 and "generate" in result.stdout


def test_generate_continues_the_prompt(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    for extra in ([], ["--no-acd"], ["--strategy", "top-p", "--seed", "3"]):
        result = run_acd("generate", "The cat sat on", "--model", str(tiny_gpt2), "--heads", str(gpt2_heads),
                         "--layer", "2", "--max-new-tokens", "5", *extra)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("The cat sat on") and len(result.stdout) > len("The cat sat on\n")


def test_bad_input_is_one_line_with_exit_code_2(tiny_gpt2: Path, gpt2_heads: Path) -> None:
    cases = {
        ("--layer", "3"): "error: layer=3 has no trained head",
        ("--layer", "0"): "error: layer=0 is out of range",
        ("--alpha", "1.5"): "error: alpha=1.5 is not allowed",
        ("--strategy", "nucleus"): "error: strategy='nucleus' is not allowed: use one of greedy, beam, top-k, top-p",
    }
    for args, message in cases.items():
        result = run_acd("generate", "Hi", "--model", str(tiny_gpt2), "--heads", str(gpt2_heads), *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert lines and lines[0].startswith(message), result.stderr
        assert "Traceback" not in result.stderr


def test_empty_prompt_is_refused_in_one_line(tiny_gpt2: Path) -> None:
    result = run_acd("generate", "", "--model", str(tiny_gpt2), "--max-new-tokens", "2")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: prompt='' is not allowed: it must contain at least one token"


def run_main(args: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capfd.readouterr().err


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, typer.Abort])
def test_an_interrupted_command_prints_one_line(
    interrupt: type[BaseException], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise interrupt()

    monkeypatch.setattr(acd.tools.demo, "run_demo", interrupted)
    code, err = run_main(["demo", "--dir", "unused"], capfd)
    assert (code, err) == (130, "error: interrupted\n")


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_acd_debug(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected\nsecond line")

    monkeypatch.setattr(acd.tools.demo, "run_demo", broken)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    code, err = run_main(["demo", "--dir", "unused"], capfd)
    assert (code, err) == (1, f"error: unexpected RuntimeError: injected (set {DEBUG_ENV}=1 for the traceback)\n")
    monkeypatch.setenv(DEBUG_ENV, "1")
    code, err = run_main(["demo", "--dir", "unused"], capfd)
    assert code == 1 and "Traceback" in err and "RuntimeError: injected" in err
    assert err.splitlines()[-1] == "error: unexpected RuntimeError: injected"


def test_bare_group_and_bad_option_keep_click_behaviour(capfd: pytest.CaptureFixture[str]) -> None:
    code, _ = run_main(["report"], capfd)
    assert code in (0, 2) and "generation" in capfd.readouterr().out + _
    code, err = run_main(["generate", "x", "--max-new-tokens", "0"], capfd)
    assert code == 2 and err.startswith("error: max_new_tokens='0' is not allowed") and err.count("\n") == 1
