"""Loaded by worker subprocesses in the chaos tests (ENGINE_HANDLER_MODULES): the extractor
(patterns only, as the chaos graphs configure it) plus SLOW_EXTRACT_MS (default 3) an item, so that a 1,000-item
run lasts long enough to be killed in the middle."""

from __future__ import annotations

import os
import time

from workflows.engine.nodes.base import register
from workflows.engine.nodes.models import ExtractHandler


@register("extract")
class SlowPatternExtract(ExtractHandler):
    def process(self, batch, step):
        time.sleep(float(os.environ.get("SLOW_EXTRACT_MS", "3")) / 1000 * len(batch))
        return super().process(batch, step)
