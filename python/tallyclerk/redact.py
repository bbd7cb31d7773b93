"""Keep secrets out of logs, reports and error messages.

:func:`redact` masks the password of every URL in a text (``scheme://user:pw@host`` becomes
``scheme://user:***@host``) and ``password=...`` pairs of libpq-style connection strings. It is
applied by the logging formatters, the CLI's error path and every report that shows a URL.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

MASK = "***"

# scheme://user:password@host  -> scheme://user:***@host  (up to the last '@' of the authority, so
# an unencoded '@' inside the password is masked too)
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^/\s]+)(?=@[^@/\s]*(?:[/?#\s]|$))"
)
# libpq keyword/value and query-string passwords: password=secret, ?password=secret&...
_KV_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s&;,]+)", re.IGNORECASE
)


def redact(text: str) -> str:
    """Return ``text`` with every URL password and ``password=`` value replaced by ``***``."""
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    if "assword" in text or "ASSWORD" in text:
        text = _KV_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return text
