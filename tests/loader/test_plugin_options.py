"""What a plugin receives in ``options``: every documented key, with the defaults ``--help``
shows, from the command line and from an in-process load alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tallyclerk.hookspecs import hookimpl
from tallyclerk.settings import Settings
from tallyclerk.testing import Runner
from tests.cli.conftest import env_for, tallyclerk

PLUGIN = '''
import json
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_open_source(path, options):
    keep = {k: options[k] for k in ("format", "delimiter", "encoding", "batch_rows",
                                     "max_field_bytes")}
    keep["settings_batch_rows"] = options["settings"].batch_rows
    keep["schema"] = options["schema"] is not None
    with open("seen.json", "w") as fh:
        json.dump(keep, fh)
    return None
'''

DEFAULTS = {"format": None, "delimiter": None, "encoding": "utf-8",
            "max_field_bytes": Settings().max_field_bytes, "settings_batch_rows": 0,
            "schema": False}


def test_cli_options_reach_plugins_with_their_documented_defaults(tmp_path: Path) -> None:
    (tmp_path / "seen_plugin.py").write_text(PLUGIN, encoding="utf-8")
    (tmp_path / "a.csv").write_text("id\n1\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "seen_plugin", cwd=tmp_path,
                   env=env_for(tmp_path))
    assert r.code == 0, r.err
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen.pop("batch_rows") > 0  # the adaptive sizer's current size
    assert seen == DEFAULTS


class Seen:
    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    @hookimpl
    def tallyclerk_open_source(self, path: str, options: Any) -> None:
        self.options = dict(options)


def test_in_process_loads_pass_the_same_keys(tallyclerk_runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n", encoding="utf-8")
    seen = Seen()
    tallyclerk_runner.load([tmp_path / "a.csv"], table="t", plugins=[seen],
                           settings={"batch_rows": 3})
    assert {k: seen.options[k] for k in ("format", "delimiter", "encoding", "batch_rows")} == {
        "format": None, "delimiter": None, "encoding": "utf-8", "batch_rows": 3}
    assert seen.options["settings"].batch_rows == 3
    assert seen.options["max_field_bytes"] == Settings().max_field_bytes
