"""Loaded by worker subprocesses in the chaos tests (ENGINE_HANDLER_MODULES): the pattern extractor
plus SLOW_EXTRACT_MS (default 3) an item, so that a 1,000-item run lasts long enough to be killed in the middle."""

from __future__ import annotations

import os
import time

from workflows.engine.handlers import PatternExtractHandler, register


@register("extract")
class SlowPatternExtract(PatternExtractHandler):
    def process(self, batch, step):
        time.sleep(float(os.environ.get("SLOW_EXTRACT_MS", "3")) / 1000 * len(batch))
        return super().process(batch, step)
