"""Running whole loads as a user runs them, each in its own process, alternating rounds.

``tallyclerk_load`` builds the command line of ``python3 -m tallyclerk.cli load`` (fresh
database each run, Table Schema on, the audit store in the same file); :func:`rounds` runs a
set of commands round after round, rotating their order so that load from other processes on
the machine falls on every side alike, and returns each command's runs. Data files are cached
under the system temp directory (``tallyclerk-bench-data``): generating 1,000,000 rows takes
about 15 s.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import peers

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(tempfile.gettempdir()) / "tallyclerk-bench-data"


def data(rows: int) -> tuple[Path, Path, Path]:
    """``(csv, jsonl, schema)`` of ``rows`` generated rows (cached between runs)."""
    return peers.generate(rows, DATA_DIR)


def fresh(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def cli_env(**settings: str) -> dict[str, str]:
    """The environment of a CLI run: defaults for every setting except ``settings``.

    Third-party plugins installed beside tallyclerk (``TALLYCLERK_LOAD_PLUGINS`` empty) are
    left out unless the caller sets ``TALLYCLERK_LOAD_PLUGINS`` itself: they are not
    tallyclerk, and one that imports a large library at start-up would be measured instead.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "python")] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    env["TALLYCLERK_LOAD_PLUGINS"] = ""
    env.update(settings)
    return env


@dataclass(frozen=True)
class Command:
    """One way of loading ``src`` into a database: ``run(src, db)`` returns the measured run."""

    name: str
    run: Callable[[Path, Path], peers.Run]


def tallyclerk_load(name: str, schema: Path | None, *extra: str,
                    env: Mapping[str, str] | None = None,
                    inherit_plugins: bool = False) -> Command:
    """``python3 -m tallyclerk.cli load SRC --table orders --schema S --into sqlite:///DB``
    (``schema`` None: without ``--schema``, the types inferred from a sample of SRC).

    The run's ``rows`` are the rows found in the table afterwards. ``inherit_plugins``: load
    every installed plugin (``env`` then decides ``TALLYCLERK_LOAD_PLUGINS``).
    """
    child_env = cli_env(**(env or {}))
    if inherit_plugins and "TALLYCLERK_LOAD_PLUGINS" not in (env or {}):
        del child_env["TALLYCLERK_LOAD_PLUGINS"]

    def run(src: Path, db: Path) -> peers.Run:
        fresh(db)
        given = ["--schema", str(schema)] if schema is not None else []
        argv = [sys.executable, "-m", "tallyclerk.cli", "load", str(src), "--table", "orders",
                *given, "--into", f"sqlite:///{db}", *extra]
        r = peers.run_command(name, argv, 0, env=child_env, cwd=db.parent)
        r.rows = count_rows(db)
        return r

    return Command(name, run)


def peer(name: str) -> Command:
    return Command(name, lambda src, db: peers.run_peer(name, src, db))


def rounds(commands: list[tuple[Command, Path]], n: int, workdir: Path,
           only_first: frozenset[str] = frozenset()) -> dict[str, list[peers.Run]]:
    """Run every ``(command, source)`` ``n`` times, rotating the order each round.

    Commands named in ``only_first`` (the slowest peers) run in the first round only.
    """
    runs: dict[str, list[peers.Run]] = {c.name: [] for c, _ in commands}
    for i in range(n):
        k = i % len(commands)
        for command, src in commands[k:] + commands[:k]:
            if i > 0 and command.name in only_first:
                continue
            db = workdir / f"{command.name}.db"
            runs[command.name].append(command.run(src, db))
            fresh(db)
    return runs


def median_s(runs: list[peers.Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def peak_mb(runs: list[peers.Run]) -> float:
    return max(r.peak_rss_mb for r in runs)


def count_rows(db: Path, table: str = "orders") -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        con.close()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"
