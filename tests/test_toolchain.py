"""The Rust tests and the linters run as part of the one test command.

Each is a real subprocess; its output is shown when it fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out = f"{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}"
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{out}")


def test_cargo_test() -> None:
    run("cargo", "test", "--quiet")


def test_cargo_clippy() -> None:
    run("cargo", "clippy", "--all-targets", "--quiet", "--", "-D", "warnings")


def test_cargo_clippy_bindings() -> None:
    run("cargo", "clippy", "--features", "python", "--quiet", "--", "-D", "warnings")


def test_ruff() -> None:
    run(sys.executable, "-m", "ruff", "check", "python", "tests", "benches", "plugins")


def test_mypy_strict() -> None:
    run(sys.executable, "-m", "mypy")


def test_stubs_match_the_compiled_module() -> None:
    allow = ROOT / "python" / "tallyclerk" / ".mypy-stubtest-allowlist"
    args = [sys.executable, "-m", "mypy.stubtest", "tallyclerk._core"]
    if allow.exists():
        args += ["--allowlist", str(allow)]
    run(*args)


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not installed")
def test_rust_formatting() -> None:
    run("cargo", "fmt", "--check")
