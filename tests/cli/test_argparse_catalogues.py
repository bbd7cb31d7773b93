"""The ``tallyclerk`` process skips gettext's catalogue search for argparse's messages only
when there is no catalogue to find (tallyclerk.cli.catalogs): its help, usage errors and exit
statuses are byte-identical to argparse's own, and a bound catalogue still translates."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import Result, env_for, run_cli

# the same commands through tallyclerk.cli.main() in-process (argparse left as it is)
_PLAIN = (
    "import sys\n"
    "from tallyclerk.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _plain(*args: str, cwd: Path, env: dict[str, str]) -> Result:
    proc = subprocess.run([sys.executable, "-c", _PLAIN, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("load", "--help"),
        ("load",),  # a missing argument: usage error, exit 2
        ("load", "x.csv", "--table", "t", "--on-error", "sometimes"),  # a bad choice
        ("nosuch",),  # an unknown command
        ("status", "--help"),
    ],
)
def test_messages_and_exit_statuses_are_argparse_own(tmp_path: Path, args: tuple[str, ...]
                                                      ) -> None:
    env = env_for(COLUMNS="100", LANGUAGE="de_DE", LANG="de_DE.UTF-8")
    got = run_cli(*args, cwd=tmp_path, env=env)
    want = _plain(*args, cwd=tmp_path, env=env)
    assert (got.code, got.out, got.err) == (want.code, want.out, want.err)
    assert got.out or got.err


def _mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU message catalogue (the .mo format gettext reads)."""
    keys = sorted(messages)
    ids = [k.encode() for k in keys]
    strs = [messages[k].encode() for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n
    offsets: list[int] = []
    blob = b""
    for s in ids + strs:
        offsets += [len(s), start + len(blob)]
        blob += s + b"\0"
    header = struct.pack("Iiiiiii", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(header + struct.pack(f"{4 * n}i", *offsets) + blob)


def test_a_bound_catalogue_still_translates(tmp_path: Path) -> None:
    locales = tmp_path / "locale"
    _mo(locales / "de" / "LC_MESSAGES" / "messages.mo",
        {"": "Content-Type: text/plain; charset=UTF-8\n",
         "the following arguments are required: %s": "es fehlen: %s"})
    code = (
        "import gettext, sys\n"
        f"gettext.bindtextdomain('messages', {str(locales)!r})\n"
        "sys.argv = ['tallyclerk', 'load']\n"
        "from tallyclerk.cli import console_main\n"
        "console_main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          env=env_for(LANGUAGE="de"), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("tallyclerk: error: es fehlen: PATH, --table"), proc.stderr
