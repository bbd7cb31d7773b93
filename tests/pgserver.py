"""A throwaway PostgreSQL cluster for the test suite.

Uses Debian's PostgreSQL packages. When they are missing and we are root with apt-get, they are
installed (set ``TALLYCLERK_PG_INSTALL=0`` to forbid that). The cluster lives in a temporary
directory, listens on 127.0.0.1 on a free port, uses password (SCRAM) authentication over TCP so
password masking is tested against a real password, and is stopped at the end of the session.
Set ``TALLYCLERK_PG_URL`` to use an existing server instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "tc-s3cret-pw"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str
    datadir: Path | None = None
    bindir: Path | None = None

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        if self.datadir is None or self.bindir is None:
            return
        pg_ctl = str(self.bindir / "pg_ctl")
        _as_postgres([pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install() -> None:
    if os.environ.get("TALLYCLERK_PG_INSTALL", "1") == "0":
        raise PostgresUnavailable("PostgreSQL is not installed and TALLYCLERK_PG_INSTALL=0")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable("PostgreSQL is not installed; apt-get (as root) is unavailable")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")


def _as_postgres(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout)[-800:]}")
    return proc


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start() -> PgServer:
    """Start a throwaway cluster (or use ``TALLYCLERK_PG_URL``)."""
    if os.environ.get("TALLYCLERK_PG_URL"):
        from sqlalchemy.engine import make_url

        u = make_url(os.environ["TALLYCLERK_PG_URL"])
        return PgServer(u.host or "127.0.0.1", u.port or 5432, u.username or "postgres",
                        u.password or "")
    bindir = _bindir()
    if bindir is None:
        _install()
        bindir = _bindir()
        if bindir is None:
            raise PostgresUnavailable("no initdb under /usr/lib/postgresql after installing")
    base = Path(tempfile.mkdtemp(prefix="tallyclerk-pg-"))
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockdir, "postgres")
        shutil.chown(pwfile, "postgres")
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", user, "--pwfile", str(pwfile),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
    port = _free_port()
    opts = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
    _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                  str(base / "log"), "-w", "-t", "60", "start"])
    return PgServer("127.0.0.1", port, user, PASSWORD, datadir, bindir)


@contextlib.contextmanager
def server_for_tests() -> Iterator[PgServer]:
    """A server for a test or benchmark session, stopped afterwards.

    Skips, saying why, when none can be started, except in CI (``CI`` set), where PostgreSQL is
    required and its absence fails the run.
    """
    import pytest

    try:
        server = start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        yield server
    finally:
        server.stop()
