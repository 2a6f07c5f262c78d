"""The fixed synthetic ledger the KPI tests compute by hand (see the numbers in test_formulas.py).

ISO week 2025-W13 runs from Monday 24 March 00:00 to Monday 31 March 00:00, Europe/Rome (the default
TIME_ZONE, which KPI weeks are cut in); summer time starts on Sunday 30 March, so the week is 167 hours
long and its last half hour is 21:30–22:00 UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.builders import ledger_document, ledger_run, ledger_stats

ROME = ZoneInfo("Europe/Rome")
W13 = date(2025, 3, 24)
W14 = date(2025, 3, 31)
W12 = date(2025, 3, 17)
TUESDAY = datetime(2025, 3, 25, 9, 0, tzinfo=ROME)

# seq: (path, small confidence, small label, large label, truth, cycle hours, answer minutes/€/tokens)
DOCUMENTS = {
    1: ("small", 0.95, "billing", None, None, 1.0, None),
    2: ("small", 0.91, "technical", None, None, 1.5, None),
    3: ("large", 0.62, "account", "billing", None, 2.0, (20, 0.004, (200, 100))),
    4: ("large", 0.55, "billing", "billing", None, 3.0, (40, 0.006, (300, 100))),
    5: ("human", 0.40, "technical", None, "technical", 10.0, None),
    6: ("human", 0.29, "billing", None, "account", 30.0, None),
    7: ("human", 0.70, "account", None, "account", 5.0, None),
    8: ("dead", None, None, None, None, 4.0, None),
}


def build(workflow, user=None):
    """Ten documents: eight finish on Tuesday of W13, one on Sunday 23:30 (still W13), one on Monday 00:30 (W14)."""
    run = ledger_run(workflow, user)
    for seq, (path, conf, small, large, truth, hours, answer) in DOCUMENTS.items():
        extra = {}
        if answer:
            extra = {"answer_minutes": answer[0], "answer_eur": answer[1], "answer_tokens": answer[2]}
        ledger_document(run, seq, received=TUESDAY, hours=hours, path=path, small_conf=conf,
                        small_label=small or "billing", large_label=large or "billing", truth=truth, user=user, **extra)
    sunday_late = datetime(2025, 3, 30, 23, 30, tzinfo=ROME)
    ledger_document(run, 9, received=sunday_late - timedelta(hours=0.5), hours=0.5, path="small", small_conf=0.99)
    monday_early = datetime(2025, 3, 31, 0, 30, tzinfo=ROME)
    ledger_document(run, 10, received=monday_early - timedelta(hours=1), hours=1, path="small", small_conf=0.85)
    # Ten items went through the cascade (0.5 CPU-s each); five asked the large model (0.01 € and 100 tokens a call).
    ledger_stats(run, "cas", items_in=10, cpu_seconds=5.0, extra={"cost_eur": 0.05, "tokens": 500, "llm_calls": 5})
    ledger_stats(run, "ans", items_in=2, cpu_seconds=0.2, extra={"cost_eur": 0.01, "tokens": 700, "llm_calls": 2})
    return run
