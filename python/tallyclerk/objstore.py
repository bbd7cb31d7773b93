"""Object storage and HTTP sources: ``s3://``, ``gs://``, ``az://`` and ``https://`` paths.

Reached through fsspec and its maintained back-ends (s3fs, gcsfs, adlfs; aiohttp for HTTP),
installed as the extras ``tallyclerk[s3]``, ``tallyclerk[gcs]``, ``tallyclerk[azure]`` and
``tallyclerk[http]``. Credentials and endpoints come from each cloud's own chain (for S3:
botocore's environment variables including ``AWS_ENDPOINT_URL``, shared config and credentials
files, profiles, SSO, instance/container roles); tallyclerk never reads, logs or stores them.
A URL carrying credentials itself (``https://user:pw@...``, a signature or token in the query
string) is refused (exit 2), because the path is recorded in reports and in the audit store.

:func:`expand` turns a glob (``s3://bucket/2026/*.csv``) into the matching objects, sorted.
:func:`fetch` copies one object to a private temporary file (the *spool*) in chunks, so memory
stays bounded whatever the object's size, and returns the local path with the object's
identity (URL, size, ETag, version, last-modified); :mod:`tallyclerk.objprefetch` makes the
same copy ahead, while the load is set up or the previous object loads. The pipeline then
fingerprints and loads the spool exactly as a local file, so:

* the object is read over the network once, while the exactly-once fingerprint must be known
  before the file is claimed (streaming would read it twice, and could load bytes other than
  the fingerprinted ones if the object were rewritten in between);
* S3 objects are read with one streamed GET (one response is one version of the object: its
  ETag, size and version are those of every byte copied), a plain ``s3://bucket/key`` with
  botocore's own client (:mod:`tallyclerk.s3get`: s3fs's configuration without importing
  s3fs, aiobotocore and aiohttp), other S3 URLs and globs through s3fs; other stores with
  ranged reads of :data:`CHUNK` bytes pinned to the object's ETag (``If-Match``), each
  retried by the back-end;
* a connection that drops in the middle of an object fails that copy, and the whole copy is
  retried with the pipeline's backoff, up to ``max_retries``, before anything is claimed or
  written, so a file is never half-loaded;
* every loader, compressed input and plugin (which may need a seekable file) works unchanged.

Timeouts and retries follow the settings: ``connect_timeout_s``, ``read_timeout_s`` (each
network read), ``max_retries`` and ``backoff_initial_ms``/``backoff_max_ms``. The spool lives
under the system temporary directory (``TMPDIR``) and is removed when the file is done.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from tallyclerk import s3get
from tallyclerk.errors import ConfigError, SourceError, TallyclerkError
from tallyclerk.redact import redact
from tallyclerk.remote import EXTRAS, FetchStopped, is_remote
from tallyclerk.retry import Backoff
from tallyclerk.settings import settings_of

__all__ = ["CHUNK", "COPIES_AHEAD", "EXTRAS", "Fetched", "FetchStopped", "ObjectInfo", "copier",
           "copy", "expand", "fetch", "is_remote", "spool_file"]

T = TypeVar("T")
_POLL_S = 0.05
CHUNK = 8 * 1024 * 1024
"""Bytes read from the network at a time (one ranged GET on object stores)."""

_GLOB = re.compile(r"[*?\[]")
_SECRET_PARAM = re.compile(
    r"sig|signature|token|credential|secret|password|passwd|key$|^sv$|^se$", re.IGNORECASE
)
# values that must never appear in a message, whatever a back-end puts in its exceptions
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
               "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING",
               "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET")


Take = Callable[[str, Callable[[], str | None]], "Fetched | None"]
COPIES_AHEAD: contextvars.ContextVar[Take | None] = contextvars.ContextVar(
    "tallyclerk_copies_ahead", default=None)
"""Where :func:`fetch` asks for a copy made ahead of it (set by :mod:`tallyclerk.objprefetch`
for the load running in this context): ``take(url, should_stop)`` returns it, or None."""


@dataclass(frozen=True)
class ObjectInfo:
    """What identifies the object that was read (recorded in the manifest)."""

    url: str
    size: int
    etag: str | None = None
    version: str | None = None
    mtime: float = 0.0


@dataclass(frozen=True)
class Fetched:
    """An object copied to ``local`` (a private temporary file named like the object)."""

    local: str
    info: ObjectInfo


def scrub(text: str) -> str:
    """``text`` without URL passwords or the value of any credential environment variable."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return redact(text)


def check_url(url: str) -> None:
    """Refuse a URL that carries credentials (exit 2): it would be recorded as given."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigError(
            f"{parts.scheme}:// URL with a user name or password: put credentials in the "
            "environment or the cloud's configuration, not in the URL (it is recorded in "
            "reports and the audit store)"
        )
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAM.search(name):
            raise ConfigError(
                f"{parts.scheme}:// URL with a credential in its query string ({name}=...): "
                "put credentials in the environment or the cloud's configuration (the URL is "
                "recorded in reports and the audit store)"
            )


def _options(scheme: str, settings: Any) -> dict[str, Any]:
    """fsspec storage options that apply the settings' timeouts and retries."""
    s = settings_of(settings)
    connect, read, retries = s.connect_timeout_s, s.read_timeout_s, s.max_retries
    kind = EXTRAS[scheme]
    if kind == "s3":
        return {"config_kwargs": {"connect_timeout": connect, "read_timeout": read,
                                  "retries": {"max_attempts": retries + 1, "mode": "standard"}}}
    if kind == "gcs":
        return {"requests_timeout": read}
    if kind == "azure":
        return {"connection_timeout": max(1, round(connect)), "read_timeout": max(1, round(read))}
    import aiohttp  # the http back-end's own dependency

    return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(
        total=None, connect=connect, sock_connect=connect, sock_read=read)}}


def _filesystem(url: str, settings: Any) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)``; ConfigError when the back-end is missing."""
    scheme = url.partition("://")[0].lower()
    extra = EXTRAS[scheme]
    try:
        from fsspec.core import url_to_fs  # type: ignore[import-untyped,unused-ignore]

        if extra == "gcs" and os.environ.get("STORAGE_EMULATOR_HOST"):
            fs, path = _gcs_emulator(url, _options(scheme, settings))
        else:
            fs, path = url_to_fs(url, **_options(scheme, settings))
    except ImportError as exc:
        raise ConfigError(
            f"{scheme}:// paths need the {extra!r} extra: pip install 'tallyclerk[{extra}]' "
            f"({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the back-end refused its configuration
        # e.g. az:// without an account name or connection string: a configuration error
        raise ConfigError(f"{scheme}:// cannot be used here: {_describe(exc)}") from None
    return fs, str(path)


def _gcs_emulator(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """gcsfs's core file system for a GCS emulator (``STORAGE_EMULATOR_HOST``).

    gcsfs's default class first asks a bucket's type (hierarchical, zonal) over gRPC, which an
    emulator does not serve: each bucket would cost a 60-second timeout before the JSON API
    is used. The core class speaks only the JSON API, which is all an emulator has.
    """
    from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped,unused-ignore]

    fs = GCSFileSystem(**options)
    return fs, str(fs._strip_protocol(url))


def _check_backend(url: str, settings: Any) -> None:
    """ConfigError unless ``url``'s back-end is installed and accepts its configuration.

    For S3 only whether s3fs is installed is looked up, without importing it: importing
    s3fs/aiobotocore/aiohttp costs about a third of a second of CPU, and a plain object is
    read without them (:mod:`tallyclerk.s3get`, on :mod:`tallyclerk.objprefetch`'s thread)
    (s3fs has no configuration that its construction refuses).
    """
    scheme = url.partition("://")[0].lower()
    if EXTRAS[scheme] == "s3":
        import importlib.util

        if all(importlib.util.find_spec(m) is not None for m in ("fsspec", "s3fs")):
            return
    _filesystem(url, settings)


def _retrying(what: str, settings: Any, sleep: Callable[[float], bool],
              work: Callable[[], T], should_stop: Callable[[], str | None]) -> T:
    """Run ``work`` with the settings' backoff; permanent failures become SourceError."""
    s = settings_of(settings)
    backoff = Backoff(initial_ms=s.backoff_initial_ms, max_ms=s.backoff_max_ms,
                      max_retries=s.max_retries)
    attempt = 0
    while True:
        attempt += 1
        try:
            return work()
        except (TallyclerkError, FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - network errors of any back-end: retried
            why = should_stop()
            if why is not None:
                raise FetchStopped(why) from None
            if not backoff.should_retry(attempt):
                raise SourceError(
                    f"{what}: {_describe(exc)} (after {attempt} attempts)", path=what
                ) from None
            if sleep(backoff.delay_s(attempt)):
                raise FetchStopped(should_stop() or "interrupted") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def expand(paths: Sequence[str], settings: Any, *,
           sleep: Callable[[float], bool] | None = None) -> list[str]:
    """The paths with every object-store glob replaced by its matches (sorted).

    A glob that matches nothing stays as given (its load then fails "no such object"); local
    paths and plain URLs pass through. Raises ConfigError for a URL with credentials in it or
    a scheme whose extra is not installed.
    """
    out: list[str] = []
    wait = sleep or _no_wait
    for path in paths:
        if not is_remote(path):
            out.append(path)
            continue
        check_url(path)
        scheme, _, rest = path.partition("://")
        if scheme.lower() in ("http", "https") or not _GLOB.search(rest):
            _check_backend(path, settings)  # the back-end is installed (else exit 2)
            out.append(path)
            continue
        fs, pattern = _filesystem(path, settings)

        def listing(fs: Any = fs, pattern: str = pattern) -> Any:
            return fs.glob(pattern, detail=True)

        try:
            found = _retrying(path, settings, wait, listing, lambda: None)
        except (FileNotFoundError, PermissionError, SourceError):
            found = {}
        names = sorted(name for name, info in found.items() if info.get("type") != "directory")
        if names:
            out.extend(f"{scheme}://{name}" for name in names)
        else:
            out.append(path)
    return out


def _no_wait(delay: float) -> bool:
    import time

    time.sleep(delay)
    return False


def _info(url: str, raw: dict[str, Any]) -> ObjectInfo:
    def first(*keys: str) -> Any:
        for key in keys:
            value = raw.get(key)
            if value not in (None, ""):
                return value
        return None

    etag = first("ETag", "etag", "Etag")
    version = first("VersionId", "version_id", "generation", "versionId")
    modified = first("LastModified", "last_modified", "updated", "mtime", "Last-Modified")
    mtime = 0.0
    if isinstance(modified, datetime):
        mtime = modified.timestamp()
    elif isinstance(modified, (int, float)):
        mtime = float(modified)
    elif isinstance(modified, str):
        with contextlib.suppress(ValueError):
            mtime = datetime.fromisoformat(modified.replace("Z", "+00:00")).timestamp()
    return ObjectInfo(
        url=url,
        size=int(raw.get("size") or 0),
        etag=None if etag is None else str(etag).strip('"'),
        version=None if version is None else str(version),
        mtime=mtime,
    )


def _in_thread(work: Callable[[Callable[[], str | None]], ObjectInfo],
               should_stop: Callable[[], str | None]) -> ObjectInfo:
    """Run ``work(stopped)`` in a thread of its own while this one watches ``should_stop``.

    A network read can block for up to ``read_timeout_s`` (a chunk is 8 MiB): a stop request
    must not wait for it. On a stop this raises :class:`FetchStopped` at once; the abandoned
    copy sees ``stopped()`` answer between chunks and ends (its spool is already removed).
    """
    box: dict[str, Any] = {}
    abandoned = threading.Event()

    def stopped() -> str | None:
        return "abandoned" if abandoned.is_set() else None

    def target() -> None:
        try:
            box["value"] = work(stopped)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="tallyclerk-fetch", daemon=True)
    thread.start()
    while True:
        thread.join(_POLL_S)
        if not thread.is_alive():
            break
        why = should_stop()
        if why is not None:
            abandoned.set()
            raise FetchStopped(why)
    if "error" in box:
        raise box["error"]
    value: ObjectInfo = box["value"]
    return value


@contextlib.contextmanager
def fetch(url: str, settings: Any, *, should_stop: Callable[[], str | None],
          sleep: Callable[[float], bool]) -> Iterator[Fetched]:
    """Copy the object at ``url`` to a private temporary file; removed on exit.

    Raises:
        SourceError: no such object, access denied, or still failing after ``max_retries``
            (the message names the URL and the cause, never a credential).
        FetchStopped: ``should_stop()`` answered a reason (checked every 50 ms).
        ConfigError: the scheme's extra is not installed.
    """
    check_url(url)
    take = COPIES_AHEAD.get()
    ready = None if take is None else take(url, should_stop)  # copied while earlier work ran
    if ready is not None:
        try:
            yield ready
        finally:
            shutil.rmtree(os.path.dirname(ready.local), ignore_errors=True)
        return
    path, one = copier(url, settings)
    spool = tempfile.mkdtemp(prefix="tallyclerk-fetch-")
    try:
        def attempts(stopped: Callable[[], str | None]) -> ObjectInfo:
            return _retrying(url, settings, sleep, lambda: one(spool, stopped), stopped)

        try:
            info = _in_thread(attempts, should_stop)
        except FileNotFoundError:
            raise SourceError(f"{url}: no such object", path=url) from None
        except PermissionError as exc:
            raise SourceError(f"{url}: access denied ({_describe(exc)})", path=url) from None
        except IsADirectoryError:
            raise SourceError(f"{url}: is a prefix (directory), not an object", path=url) from None
        yield Fetched(local=spool_file(spool, path), info=info)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


CopyOnce = Callable[[str, Callable[[], str | None]], ObjectInfo]


def copier(url: str, settings: Any) -> tuple[str, CopyOnce]:
    """``(path, copy_once)`` for the object at ``url``: ``copy_once(spool, stopped)`` makes
    one attempt at copying it to ``spool_file(spool, path)``.

    A plain ``s3://bucket/key`` is read with botocore's own client (:mod:`tallyclerk.s3get`:
    the same configuration as s3fs's, without importing s3fs, aiobotocore and aiohttp);
    everything else through its fsspec back-end (:func:`copy`). Raises ConfigError when the
    back-end is not installed.
    """
    if EXTRAS[url.partition("://")[0].lower()] == "s3" and s3get.applies(url):
        import importlib.util

        if importlib.util.find_spec("botocore") is None:  # s3fs's own dependency
            raise ConfigError("s3:// paths need the 's3' extra: pip install 'tallyclerk[s3]' "
                              "(No module named 'botocore')")
        s = settings_of(settings)
        path = url.partition("://")[2]

        def one(spool: str, stopped: Callable[[], str | None]) -> ObjectInfo:
            raw = s3get.get(url, spool_file(spool, path), connect_s=s.connect_timeout_s,
                            read_s=s.read_timeout_s, retries=s.max_retries, stopped=stopped,
                            on_stop=FetchStopped)
            return _info(url, raw)

        return path, one
    fs, path = _filesystem(url, settings)
    return path, lambda spool, stopped: copy(fs, path, url, spool, stopped)


def spool_file(spool: str, path: str) -> str:
    """The file in the private directory ``spool`` that holds the object at ``path``."""
    return os.path.join(spool, os.path.basename(path.rstrip("/").split("?", 1)[0]) or "object")


def copy(fs: Any, path: str, url: str, spool: str,
         stopped: Callable[[], str | None]) -> ObjectInfo:
    """One attempt at copying the object ``path`` of ``fs`` to :func:`spool_file`.

    S3 and HTTP: one streamed GET (:func:`_stream_s3`; HTTP servers need not support ranges);
    other object stores: ranged GETs of CHUNK bytes, each retried by the back-end and pinned
    to the object's ETag. Raises FetchStopped when ``stopped()`` answers a reason (asked
    between chunks), OSError on a short read, and whatever the back-end raises.
    """
    if EXTRAS[url.partition("://")[0].lower()] == "s3" and hasattr(fs, "_call_s3"):
        return _stream_s3(fs, path, url, spool, stopped)
    block = 0 if EXTRAS[url.partition("://")[0].lower()] == "http" else CHUNK
    copied = 0
    with fs.open(path, "rb", block_size=block, cache_type="none") as src, \
            open(spool_file(spool, path), "wb") as dst:
        # the details the file was opened with (and its reads pinned to); a streamed HTTP
        # file has none: ask
        info = _info(url, getattr(src, "details", None) or fs.info(path))
        while True:
            why = stopped()
            if why is not None:
                raise FetchStopped(why)
            chunk = src.read(CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            copied += len(chunk)
    if info.size and copied != info.size:
        raise OSError(f"short read: {copied} of {info.size} bytes")
    return info


STREAM_CHUNK = 1024 * 1024
"""Bytes handed from s3fs's event loop to the copying thread at a time (S3's streamed GET)."""


def _stream_s3(fs: Any, path: str, url: str, spool: str,
               stopped: Callable[[], str | None]) -> ObjectInfo:
    """Copy an S3 object with one streamed GET (s3fs's client, its retries and timeouts).

    One response is one version of the object, so the size, ETag and version it names are
    those of every byte copied; a connection cut in the middle fails this attempt (the
    caller's backoff copies the object again from its start). Ranged reads would cost a
    request per chunk, and S3-compatible servers such as moto's copy the whole object for
    every range.
    """
    from fsspec.asyn import sync  # type: ignore[import-untyped,unused-ignore]

    bucket, key, version = fs.split_path(path)
    if not key:
        raise IsADirectoryError(path)
    extra = {"VersionId": version} if version else {}
    try:
        resp = sync(fs.loop, fs._call_s3, "get_object", Bucket=bucket, Key=key, **extra,
                    **fs.req_kw)
    except FileNotFoundError:
        if fs.isdir(path):  # a prefix: said so, as a ranged open says it
            raise IsADirectoryError(path) from None
        raise
    body = resp["Body"]
    info = _info(url, {"ETag": resp.get("ETag"), "size": resp.get("ContentLength"),
                       "LastModified": resp.get("LastModified"),
                       "VersionId": resp.get("VersionId")})

    async def read_some() -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < STREAM_CHUNK:
            part: bytes = await body.read(STREAM_CHUNK - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    copied = 0
    try:
        with open(spool_file(spool, path), "wb") as dst:
            while True:
                why = stopped()
                if why is not None:
                    raise FetchStopped(why)
                chunk: bytes = sync(fs.loop, read_some)
                if not chunk:
                    break
                dst.write(chunk)
                copied += len(chunk)
    finally:
        with contextlib.suppress(Exception):
            body.close()
    if info.size and copied != info.size:
        raise OSError(f"short read: {copied} of {info.size} bytes")
    return info
