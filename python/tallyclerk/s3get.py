"""An S3 object's plain GET through botocore itself, without s3fs (issue 14's S3 speed).

Copying one object is one GET. s3fs reaches it through aiobotocore and aiohttp, whose imports
and client cost a load about 0.55 s of CPU (``import s3fs`` 0.33 s, its client 0.1 s, measured
on the benchmark machine) against about 0.2 s for botocore's own synchronous client. botocore
is what s3fs configures itself from (s3fs depends on it through aiobotocore, so the ``s3``
extra installs it), and tallyclerk passes s3fs nothing but botocore settings, so the same
client results from the same configuration:

* credentials, region, profile and endpoint come from botocore's chain, exactly as with s3fs
  (``AWS_ACCESS_KEY_ID``..., ``AWS_PROFILE``, ``~/.aws/config``, SSO, roles,
  ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``); tallyclerk never reads them;
* ``connect_timeout_s``, ``read_timeout_s`` and ``max_retries`` become the client's
  ``Config(connect_timeout, read_timeout, retries={"max_attempts": n + 1, "mode":
  "standard"})``, the options given to s3fs;
* errors are translated as s3fs translates them (no such key or bucket: FileNotFoundError;
  access denied: PermissionError); a key that is only a prefix is IsADirectoryError.

:func:`applies` leaves to s3fs what only s3fs would do differently: fsspec configuration
(any ``FSSPEC_*`` variable, or a file in fsspec's configuration directory, which may set s3fs
options such as ``anon`` or ``requester_pays``), a URL with a query (``?versionId=``), an
access-point ARN as the bucket, or a path that is not ``bucket/key``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["applies", "get", "split"]

CHUNK = 1024 * 1024
"""Bytes read from the response at a time (memory stays bounded)."""

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}
_MISSING = ("NoSuchKey", "NoSuchBucket", "404", "NotFound", "NoSuchVersion")
_DENIED = ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "AllAccessDisabled", "InvalidToken", "ExpiredToken")


def split(url: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of a plain ``s3://bucket/key`` URL, or None when s3fs must read it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a"):
        return None
    bucket, slash, key = rest.partition("/")
    if (not slash or not bucket or not key or key.endswith("/") or "?" in rest
            or "#" in rest or bucket.startswith("arn:") or "//" in rest):
        return None
    return bucket, key


def _fsspec_configured() -> bool:
    """Whether fsspec configuration may give s3fs options of its own."""
    if any(name.startswith("FSSPEC_") for name in os.environ):
        return True
    where = os.environ.get("FSSPEC_CONFIG_DIR") or os.path.join(
        os.path.expanduser("~"), ".config", "fsspec")
    try:
        with os.scandir(where) as entries:
            return any(True for _ in entries)
    except OSError:  # no such directory: nothing configured
        return False


def applies(url: str) -> bool:
    """Whether :func:`get` reads ``url`` as s3fs would (else s3fs reads it)."""
    return split(url) is not None and not _fsspec_configured()


def _client(connect_s: float, read_s: float, retries: int) -> Any:
    """botocore's S3 client for these settings and the current AWS environment (cached: a
    client is thread-safe; a changed ``AWS_*`` variable makes a new one)."""
    # the AWS_* variables by digest, so that no credential is kept in a key of ours
    aws = hashlib.sha256(repr(sorted((k, v) for k, v in os.environ.items()
                                     if k.startswith("AWS_"))).encode()).hexdigest()
    key = (connect_s, read_s, retries, aws)
    with _lock:
        found = _clients.get(key)
        if found is None:
            import botocore.session  # type: ignore[import-untyped,unused-ignore]
            from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

            config = Config(connect_timeout=connect_s, read_timeout=read_s,
                            retries={"max_attempts": retries + 1, "mode": "standard"})
            found = botocore.session.get_session().create_client("s3", config=config)
            if len(_clients) >= 8:  # a long-lived process whose environment changes
                _clients.pop(next(iter(_clients)))
            _clients[key] = found
    return found


def _translated(exc: Exception, client: Any, bucket: str, key: str) -> Exception:
    """s3fs's exception for a botocore error (others unchanged)."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

    original = exc  # (isinstance with an untyped class makes exc Any)
    if not isinstance(exc, ClientError):
        return original
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    if code in _MISSING or status == "404":
        if code != "NoSuchBucket" and _is_prefix(client, bucket, key):
            return IsADirectoryError(f"{bucket}/{key}")
        return FileNotFoundError(f"{bucket}/{key}")
    if code in _DENIED or status == "403":
        return PermissionError(code or status)
    return original


def _is_prefix(client: Any, bucket: str, key: str) -> bool:
    try:
        found = client.list_objects_v2(Bucket=bucket, Prefix=key + "/", MaxKeys=1)
    except Exception:  # noqa: BLE001 - not a listable prefix: reported as missing
        return False
    return bool(found.get("KeyCount") or found.get("Contents") or found.get("CommonPrefixes"))


def get(url: str, dest: str, *, connect_s: float, read_s: float, retries: int,
        stopped: Callable[[], str | None], on_stop: Callable[[str], Exception]
        ) -> dict[str, Any]:
    """Copy the object at ``url`` to the file ``dest`` with one streamed GET; returns the
    response's ``ETag``, ``size``, ``LastModified`` and ``VersionId`` (those of every byte
    copied: one response is one version of the object).

    Raises ``on_stop(reason)`` when ``stopped()`` answers (asked between chunks),
    FileNotFoundError / PermissionError / IsADirectoryError as s3fs does, OSError on a
    short read, and botocore's errors (a connection cut in the middle of the body: the
    caller's backoff copies the object again from its start).
    """
    where = split(url)
    if where is None:
        raise ValueError(f"not a plain s3://bucket/key URL: {url}")
    bucket, key = where
    client = _client(connect_s, read_s, retries)
    try:
        resp = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - botocore's errors, translated as s3fs does
        raise _translated(exc, client, bucket, key) from None
    body = resp["Body"]
    size = resp.get("ContentLength")
    copied = 0
    try:
        with open(dest, "wb") as out:
            while True:
                why = stopped()
                if why is not None:
                    raise on_stop(why)
                chunk: bytes = body.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                copied += len(chunk)
    finally:
        body.close()
    if size and copied != size:
        raise OSError(f"short read: {copied} of {size} bytes")
    return {"ETag": resp.get("ETag"), "size": size, "LastModified": resp.get("LastModified"),
            "VersionId": resp.get("VersionId")}
