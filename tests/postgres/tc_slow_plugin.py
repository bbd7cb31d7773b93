"""A test plugin: files named ``z-slow*`` are read slowly, and the worker that starts one says so.

At the first record batch of such a file it writes ``<file>.started.<pid>`` next to it (the
pid of the worker loading it); every batch then takes ``TC_SLOW_S`` seconds (default 0.05).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tallyclerk.hookspecs import hookimpl


@hookimpl
def tallyclerk_transform_batch(batch: Any, context: Any) -> None:
    path = Path(context.path)
    if not path.name.startswith("z-slow"):
        return
    marker = path.with_name(f"{path.name}.started.{os.getpid()}")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("TC_SLOW_S", "0.05")))
