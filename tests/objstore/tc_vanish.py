"""Test plugin (``-p tc_vanish``): when a batch starts (after the watcher listed its files and
before any is read), delete the object ``TC_VANISH_BUCKET``/``TC_VANISH_KEY`` if the batch
holds it, once: an object deleted between the listing and the read."""

from __future__ import annotations

import os
from collections.abc import Sequence

import boto3

from tallyclerk.hookspecs import hookimpl

_done = False


@hookimpl
def tallyclerk_batch_start(batch_id: str, table: str, paths: Sequence[str]) -> None:
    global _done
    bucket, key = os.environ["TC_VANISH_BUCKET"], os.environ["TC_VANISH_KEY"]
    if _done or f"s3://{bucket}/{key}" not in paths:
        return
    _done = True
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)  # AWS_* from the environment
