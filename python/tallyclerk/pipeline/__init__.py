"""The load pipeline: claim each file, stream it through the plugins into the sink, audit it.

See :mod:`tallyclerk.pipeline.batch` for the layout of the package.
"""

from __future__ import annotations

from tallyclerk.pipeline.batch import Pipeline
from tallyclerk.pipeline.policy import SKIP_AHEAD
from tallyclerk.pipeline.rejects import ON_ERROR
from tallyclerk.pipeline.stop import StopToken

__all__ = ["ON_ERROR", "SKIP_AHEAD", "Pipeline", "StopToken"]
