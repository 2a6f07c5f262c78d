from __future__ import annotations

from tests.engine.test_worker import workers  # noqa: F401  (real run_worker processes, for test_worker_ocr.py)
