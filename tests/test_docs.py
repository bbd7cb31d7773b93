"""The README documents every hook and every setting (as datasette's tests/test_docs.py does).

Adding a hook to ``tallyclerk.hookspecs`` or a field to ``tallyclerk.settings.Settings``
without documenting it in README.md fails here; so does documentation of a hook or setting
that no longer exists, or a documented signature or default that is out of date.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from tallyclerk import hookspecs
from tallyclerk.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[1] / "README.md"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("tallyclerk_"))
SETTINGS = [f.name for f in dataclasses.fields(Settings)]


def section(title: str) -> str:
    """The text under the README heading ``title`` (any level), up to the next heading of the
    same or a higher level."""
    lines = README.read_text(encoding="utf-8").splitlines()
    fenced = []  # whether each line is inside a ``` code block (a "# comment" is no heading)
    inside = False
    for line in lines:
        if line.lstrip().startswith("```"):
            inside = not inside
        fenced.append(inside)
    for i, line in enumerate(lines):
        m = re.match(r"(#+)\s+(.*?)\s*$", line)
        if m and not fenced[i] and m.group(2) == title:
            level = len(m.group(1))
            body = []
            for j in range(i + 1, len(lines)):
                h = re.match(r"(#+)\s", lines[j])
                if h and not fenced[j] and len(h.group(1)) <= level:
                    break
                body.append(lines[j])
            return "\n".join(body)
    raise AssertionError(f"README.md has no section {title!r}")


def toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return repr(value)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_signature(name: str) -> None:
    reference = section("Hook reference")
    m = re.search(rf"`{name}\(([^)]*)\)", reference)
    assert m, f"{name} is missing from README.md's hook reference"
    documented = re.findall(r"(\w+)\s*:", m.group(1))
    actual = list(inspect.signature(getattr(hookspecs, name)).parameters)
    assert documented == actual, f"README.md documents {name}({', '.join(documented)})"


def test_hook_reference_names_only_real_hooks() -> None:
    documented = set(re.findall(r"`(tallyclerk_\w+)\(", section("Hook reference")))
    assert documented == set(HOOKS)


@pytest.mark.parametrize("name", SETTINGS)
def test_setting_is_documented(name: str) -> None:
    reference = section("Configuration reference")
    rows = [line for line in reference.splitlines()
            if line.startswith("|") and f"| `{name}` |" in line]
    assert rows, f"setting {name} is missing from README.md's configuration reference"
    [row] = rows
    assert f"`{ENV_PREFIX}{name.upper()}`" in row, f"{name}: environment variable not named"
    default = dataclasses.fields(Settings)[SETTINGS.index(name)].default
    assert f"`{toml_literal(default)}`" in row, f"{name}: default should read {default!r}"


def test_exit_codes_agree_between_readme_cli_and_errors() -> None:
    import tallyclerk.cli
    import tallyclerk.errors

    def codes(text: str) -> set[str]:
        return set(re.findall(r"\b(0|1|2|3|70|130|143)\b", text))

    contract = section("The CLI contract")
    bullet = contract[contract.index("Exit codes"):].split("\n- ", 1)[0]
    expected = {"0", "1", "2", "3", "70", "130", "143"}
    assert codes(bullet) == expected
    assert codes(tallyclerk.errors.__doc__ or "") >= expected
    assert codes(tallyclerk.cli.__doc__ or "") >= expected


def test_every_public_name_of_tallyclerk_testing_is_documented() -> None:
    import tallyclerk.testing

    reference = section("`tallyclerk.testing` reference")
    for name in tallyclerk.testing.__all__:
        assert f"`{name}" in reference, f"tallyclerk.testing.{name} is not documented"


def test_configuration_reference_names_only_real_settings() -> None:
    documented = re.findall(r"^\| `([a-z][a-z0-9_]*)` \|", section("Configuration reference"), re.M)
    assert set(documented) == set(SETTINGS)
