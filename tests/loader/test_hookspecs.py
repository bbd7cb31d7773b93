"""Guardrails (as datasette's): every hook is documented, typed, and has a test_hook_<name>."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tallyclerk import hookspecs

HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("tallyclerk_"))
TESTS = Path(__file__).resolve().parents[1]


def test_the_hook_list() -> None:
    assert {
        "tallyclerk_addoption", "tallyclerk_configure", "tallyclerk_unconfigure",
        "tallyclerk_open_source", "tallyclerk_open_sink", "tallyclerk_validate_batch",
        "tallyclerk_transform_batch", "tallyclerk_batch_start", "tallyclerk_batch_finish",
        "tallyclerk_file_start", "tallyclerk_file_finish", "tallyclerk_file_skipped",
        "tallyclerk_timeout", "tallyclerk_rows_rejected",
    } <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_and_typed(name: str) -> None:
    fn = getattr(hookspecs, name)
    doc = inspect.getdoc(fn) or ""
    assert len(doc) > 40, f"{name} has no real docstring"
    sig = inspect.signature(fn)
    for param in sig.parameters.values():
        assert f":param {param.name}:" in doc, f"{name}: :param {param.name}: missing"
        assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name} untyped"
    assert sig.return_annotation is not inspect.Signature.empty
    opts = fn.tallyclerk_spec  # set by HookspecMarker
    if opts.get("firstresult"):
        assert "first non-None result" in doc, f"{name} must say it is firstresult"
    if opts.get("historic"):
        assert "Historic" in doc, f"{name} must say it is historic"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name: str) -> None:
    pattern = re.compile(rf"def test_hook_{name}\b")
    sources = [p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")]
    assert any(pattern.search(s) for s in sources), f"no test_hook_{name} in tests/"
