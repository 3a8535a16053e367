"""The console script: one-line continuations and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_acd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "acd.cli", *args], capture_output=True, text=True, env=env, timeout=300)


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
