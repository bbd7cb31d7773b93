"""Keep secrets out of logs, reports and error messages.

:func:`redact` masks the password of every URL in a text (``scheme://user:pw@host`` becomes
``scheme://user:***@host``) and ``password=...`` pairs of libpq-style connection strings. It is
applied by the logging formatters, the CLI's error path and every report that shows a URL.
"""

from __future__ import annotations

import functools
import re

__all__ = ["redact"]

MASK = "***"

# scheme://user:password@host  -> scheme://user:***@host  (up to the last '@' of the authority, so
# an unencoded '@' inside the password is masked too)
_URL_PASSWORD = (
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^/\s]+)(?=@[^@/\s]*(?:[/?#\s]|$))"
)
# libpq keyword/value and query-string passwords: password=secret, ?password=secret&...
_KV_PASSWORD = r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s&;,]+)"


@functools.cache
def _pattern(kind: str) -> re.Pattern[str]:
    if kind == "url":
        return re.compile(_URL_PASSWORD)
    return re.compile(_KV_PASSWORD, re.IGNORECASE)


def _masked(m: re.Match[str]) -> str:
    return m["head"] + MASK


def redact(text: str) -> str:
    """Return ``text`` with every URL password and ``password=`` value replaced by ``***``.

    The patterns are compiled at their first use: most texts (a local path, ``sqlite:///x.db``)
    hold neither an ``@`` nor a password, and a one-row load should not compile them at
    start-up (issue 16.1)."""
    if "@" in text:
        text = _pattern("url").sub(_masked, text)
    if "assword" in text or "ASSWORD" in text:
        text = _pattern("kv").sub(_masked, text)
    return text
