"""Every pattern finder stays linear on text built to make a regex backtrack: long runs of the
characters a pattern starts with and never completes (`a%a%a%…` with no "@", digit and separator runs
with no currency, date-like runs with no valid date). A quadratic pattern lets one 1 MB field pin a
worker for minutes; here such an input must finish well inside a budget that is 100× what a linear
scan needs, and every span found must lie inside the text. bench/patterns.py measures the growth."""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.runtimes.patterns import FINDERS, find_patterns_all

# Characters the patterns start with, continue with or separate by.
ALPHABET = "aAzZ09%._+-@ /,:€$£()ITEURe\n"
BUDGET_SECONDS = 5.0  # a linear scan of these inputs takes well under 0.1 s here


class TooSlow(Exception):
    pass


@contextmanager
def budget(seconds: float):
    def expire(signum, frame):
        raise TooSlow(f"a pattern finder took more than {seconds} s: it is not linear on this input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def count_input() -> None:
    """With CF_RELIABILITY_DIR set (bench/report.py): one more input tried, in patterns.json."""
    folder = os.environ.get("CF_RELIABILITY_DIR")
    if not folder:
        return
    path = Path(folder) / "patterns.json"
    figures = json.loads(path.read_text()) if path.exists() else {"inputs": 0}
    figures["inputs"] += 1
    path.write_text(json.dumps(figures) + "\n")


def check(text: str) -> None:
    count_input()
    with budget(BUDGET_SECONDS):
        spans = find_patterns_all(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text) and text[span.start:span.end] == span.value


@pytest.mark.parametrize("unit", ["a%", "a.", "a-b", "1 ", "1.", "€1", "1/1/", "IT1", "AB1", "a@b-"])
def test_known_backtracking_shapes_stay_linear(unit):
    check(unit * (300_000 // len(unit)))


# bench/report.py asks for more (CF_PATTERN_EXAMPLES) than a test run can afford.
@settings(max_examples=int(os.environ.get("CF_PATTERN_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(unit=st.text(alphabet=ALPHABET, min_size=1, max_size=6), prefix=st.text(alphabet=ALPHABET, max_size=20))
def test_generated_worst_cases_stay_linear(unit, prefix):
    check(prefix + unit * (120_000 // len(unit)))


def test_every_finder_is_covered():
    # A new finder must be reachable through find_patterns_all, which the checks above run.
    assert set(FINDERS) == {"email", "url", "phone", "iban", "vat", "codice_fiscale", "amount", "date"}
