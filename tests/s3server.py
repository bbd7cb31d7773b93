"""A local S3-compatible server for the test suite and the benchmarks: moto in server mode.

``moto_server`` runs in a subprocess of its own (not a thread of the test process: it would
share our GIL) on 127.0.0.1 and a free port; :func:`server_for_tests` starts it for a session
and stops it afterwards. :class:`CuttingProxy` sits between a client and the server and drops
the connection after a number of response bytes, for the given number of connections: a
server that fails in the middle of an object.

Credentials are fake but distinctive (:data:`SECRET_KEY`), so tests can grep every output and
the audit store for them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

ACCESS_KEY = "AKIATALLYCLERKTEST01"
SECRET_KEY = "tcS3cretKey/ThatMustNeverLeak+0123456789ab"
REGION = "us-east-1"


class S3Unavailable(RuntimeError):
    """moto's server cannot be started here; the message says why."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes] | None = None

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The standard AWS variables pointing at this server (or at ``endpoint``)."""
        return {
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            # no shared config/credentials files of the machine's user
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)


def start(timeout_s: float = 30.0) -> S3Server:
    try:
        import moto.server  # noqa: F401 - moto[server]
    except ImportError as exc:
        raise S3Unavailable(f"moto[server] is not installed ({exc})") from None
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = launch([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                  endpoint + "/moto-api/", timeout_s, S3Unavailable, "moto_server")
    return S3Server(endpoint, proc)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch(argv: list[str], url: str, timeout_s: float, error: type[Exception],
           name: str) -> subprocess.Popen[bytes]:
    """Start a server process in its own session and wait until ``url`` answers (else it is
    stopped and ``error`` raised)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_answering(proc, url, timeout_s, error, name)
    except error:
        terminate(proc)
        raise
    return proc


def wait_until_answering(proc: subprocess.Popen[bytes], url: str, timeout_s: float,
                         error: type[Exception], name: str) -> None:
    """Poll ``url`` until the server process ``proc`` answers; ``error`` when it exits or
    stays silent for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise error(f"{name} exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise error(f"{name} did not answer on {url} within {timeout_s} s")


@contextlib.contextmanager
def running(start_server: Callable[[], Any], error: type[Exception],
            requirement: str) -> Iterator[Any]:
    """A server for a test or benchmark session, stopped afterwards; skips when it cannot be
    started (``error``), except in CI, where ``requirement`` must be installed."""
    import pytest

    try:
        server = start_server()
    except error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{requirement} is required in CI: {exc}")
        pytest.skip(f"{requirement}: no local server could be started: {exc}")
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def server_for_tests() -> Iterator[S3Server]:
    """A local S3 server for a test or benchmark session (skips when moto is missing, except
    in CI)."""
    with running(start, S3Unavailable, "moto[server]") as server:
        yield server


class CuttingProxy:
    """A TCP proxy to ``target`` that closes a connection after ``cut_after`` bytes of response,
    for the first ``cuts`` connections that get that far (then it forwards faithfully).

    ``cuts=-1`` cuts every such connection. ``cut_count`` says how many were cut.
    ``delay_s``: a pause after each response chunk (at most 64 KiB), for a slow server;
    ``forwarded`` counts the response bytes passed on.
    """

    def __init__(self, target_port: int, *, cut_after: int, cuts: int = 1,
                 delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = cuts
        self.delay_s = delay_s
        self.cut_count = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="cutting-proxy")
        self._thread.start()

    def _should_cut(self) -> bool:
        with self._lock:
            if self.cuts != -1 and self.cut_count >= self.cuts:
                return False
            self.cut_count += 1
            return True

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if response and sent + len(data) > self.cut_after and self._should_cut():
                    dst.sendall(data[: max(0, self.cut_after - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
                if response:
                    with self._lock:
                        self.forwarded += len(data)
                    if self.delay_s:
                        time.sleep(self.delay_s)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


class SwitchProxy:
    """A TCP proxy to ``target_port`` that can be switched off and on again at the same port:
    an S3 endpoint that goes down (connections refused, open ones closed) and comes back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self.up()

    @property
    def is_up(self) -> bool:
        return self._sock is not None

    def up(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True,
                         name="switch-proxy").start()

    def down(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            conns, self._open = self._open, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.down()
