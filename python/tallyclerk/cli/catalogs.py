"""argparse's messages without gettext's catalogue search, when there is no catalogue to find.

argparse passes each of its messages (``usage: ``, ``options``, ``show this help message and
exit``, its errors...) through :func:`gettext.gettext`, and each call searches the message
catalogues afresh: the first imports :mod:`locale` to expand the language names of the
environment, every one stats a catalogue path per language (about 1.6 ms of a one-row load,
issue 16.1). gettext looks only under its default directory (``sys.base_prefix/share/locale``)
unless a program binds another (:func:`gettext.bindtextdomain`) or changes the domain
(:func:`gettext.textdomain`). When that directory does not exist and nothing was bound, every
call returns its message unchanged, whatever the language: :func:`skip_absent_catalogues`
then gives argparse those identity functions. Anything else (a catalogue directory, a binding,
a Python whose :mod:`gettext` keeps other internals) leaves argparse as it is.

Only the ``tallyclerk`` process's entry point calls it (it changes :mod:`argparse` for the whole
process, like the entry point's other process-wide steps); :func:`tallyclerk.cli.main` called
in-process does not.
"""

from __future__ import annotations

import argparse
import gettext
import os
import sys

__all__ = ["skip_absent_catalogues"]


def _same(message: str) -> str:
    return message


def _plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural  # gettext's own fallback (NullTranslations)


def skip_absent_catalogues() -> None:
    """Give argparse identity message functions when gettext can find no catalogue."""
    localedir = os.path.join(sys.base_prefix, "share", "locale")
    if (
        getattr(gettext, "_default_localedir", None) != localedir
        or getattr(gettext, "_current_domain", None) != "messages"
        or getattr(gettext, "_localedirs", None) != {}
        or getattr(argparse, "_", None) is not gettext.gettext
        or getattr(argparse, "ngettext", None) is not gettext.ngettext
        or os.path.isdir(localedir)
    ):
        return
    argparse._ = _same  # type: ignore[attr-defined]
    argparse.ngettext = _plural  # type: ignore[attr-defined]
