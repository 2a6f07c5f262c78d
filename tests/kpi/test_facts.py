"""Weekly facts as typed objects: the stored JSON format, merging, and the time zone weeks are cut in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from tests.builders import make_user, make_workflow
from tests.kpi import ledger
from workflows.kpi import isoweeks, readers, rollup
from workflows.kpi.facts import WeekFacts, merge_all
from workflows.models import KpiWeek


def _bins(rows: dict[int, list[int]]) -> list[list[int]]:
    return [list(rows.get(b, [0] * 7)) for b in range(isoweeks.BINS)]


# The KpiWeek.facts of the fixed ledger's week 13 as the code before WeekFacts wrote it (key order and
# int/float types included): rows already in databases look like this and must keep reading.
W13_ROW: dict[str, Any] = {
    "docs": 8, "dead": 1, "paths": {"small": 3, "large": 2, "human": 3},
    "cpu": {"total": 4.7, "small": 1.5, "large": 1.2, "human": 1.5},
    "llm_eur": {"total": 0.060000000000000005, "small": 0.0, "large": 0.03, "human": 0.03},
    "llm_tokens": {"total": 1200.0, "small": 0.0, "large": 900.0, "human": 300.0},
    "reviews": {"total": 3, "small": 0, "large": 0, "human": 3},
    "cycle": {"n": 8, "median": 9000.0, "p95": 108000.0, "sum": 190800.0,
              "hist": {"378": 1, "413": 1, "433": 1, "448": 1, "468": 1, "494": 1, "529": 1, "585": 1}},
    "answer": {"n": 2, "median": 1800.0, "p95": 2400.0, "sum": 3600.0, "hist": {"358": 1, "393": 1}},
    "accuracy": {"nodes": {"cas": [3, 2]}, "e2e": [3, 2]},
    "cascade": {"cas": {
        "funnel": {"small": 3, "large": 2, "human": 3},
        "bins": _bins({29: [1, 1, 0, 0, 1, 0, 0], 40: [1, 1, 1, 0, 1, 0, 0], 55: [1, 0, 0, 1, 0, 0, 0],
                       62: [1, 0, 0, 1, 0, 0, 0], 70: [1, 1, 1, 0, 1, 0, 0], 91: [1, 0, 0, 0, 0, 0, 0],
                       95: [1, 0, 0, 0, 0, 0, 0], 99: [1, 0, 0, 0, 0, 0, 0]}),
        "llm_eur": 0.05, "llm_tokens": 500.0, "llm_calls": 5, "cpu": 4.0, "items": 8}},
    "models": {"cas": {"tickets:v1": 6, "local/smollm2": 2}, "ans": {"local/smollm2": 2}},
}


def _same(a: Any, b: Any, ordered: bool = True) -> bool:
    """Equal keys (in the same order when `ordered`), equal number types, floats equal up to rounding."""
    if isinstance(a, dict):
        keys_match = list(a) == list(b) if ordered else sorted(a) == sorted(b)
        return isinstance(b, dict) and keys_match and all(_same(a[k], b[k], ordered) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(
            _same(x, y, ordered) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return type(b) is float and b == pytest.approx(a)
    return type(a) is type(b) and a == b


@pytest.fixture
def workflow(db):
    owner = make_user("des", "designer")
    wf = make_workflow(owner)
    ledger.build(wf, owner)
    return wf


def test_computed_week_is_typed_and_stored_in_the_old_format(workflow):
    week = rollup.compute_week(workflow.pk, ledger.W13)
    assert isinstance(week, WeekFacts) and week.docs == 8 and week.paths.human == 3 and week.cycle.exact
    # large_used is written only when there is one (older rows lack it and read back unchanged).
    assert _same({**W13_ROW, "large_used": 5}, week.to_json())
    rollup.store_week(workflow.pk, ledger.W13)
    stored = KpiWeek.objects.get(workflow=workflow, week_start=ledger.W13).facts
    assert _same({**W13_ROW, "large_used": 5}, stored, ordered=False)  # PostgreSQL's jsonb keeps its own key order
    assert rollup.compute_week(workflow.pk, ledger.W12) is None


def test_a_stored_row_reads_and_writes_back_unchanged():
    week = WeekFacts.from_json(W13_ROW)
    assert json.dumps(week.to_json()) == json.dumps(W13_ROW)
    assert week.cascade["cas"].bins[29] == [1, 1, 0, 0, 1, 0, 0] and week.accuracy.nodes["cas"].correct == 2
    assert week.model_refs() == ["local/smollm2", "tickets:v1"]
    assert week["docs"] == 8  # read by stored key, as code written against the dict did


def test_missing_keys_read_as_an_empty_week():
    assert WeekFacts.from_json({}) == WeekFacts()
    assert readers.documents(WeekFacts.from_json({"docs": 2})) == {"completed": 2, "dead": 0,
                                                                   "paths": {"small": 0, "large": 0, "human": 0},
                                                                   "large_answered": 0}
    assert readers.first_answer(None) is None and readers.cascade_funnel(None) == []


def test_merging_adds_everything_and_drops_exact_quantiles():
    one = WeekFacts.from_json(W13_ROW)
    both = merge_all([one, WeekFacts.from_json(W13_ROW)])
    assert merge_all([one]) is one and merge_all([]) is None
    assert both.docs == 16 and both.reviews.total == 6 and both.cpu.total == pytest.approx(9.4)
    assert both.cycle.median is None and both.cycle.n == 16 and both.cycle.hist["378"] == 2
    assert both.cascade["cas"].bins[29] == [2, 2, 0, 0, 2, 0, 0] and both.cascade["cas"].llm_calls == 10
    assert both.accuracy.nodes["cas"].n == 6 and both.accuracy.e2e.correct == 4
    assert both.models == {"cas": {"tickets:v1": 12, "local/smollm2": 4}, "ans": {"local/smollm2": 4}}
    assert one.docs == 8 and one.cycle.median == 9000.0  # the parts are left as they were


W13, W14 = ledger.W13, ledger.W14


@pytest.mark.parametrize(("zone", "docs", "hours", "late_sunday_utc"), [
    # Document 9 finished at 21:30 UTC on Sunday 30 March, document 10 an hour later.
    # Rome: 23:30 and 00:30 local, so 10 is in week 14; summer time began that Sunday (a 167-hour week).
    ("Europe/Rome", {W13: 8, W14: 1}, 167, {"21:45": W13, "22:15": W14}),
    ("UTC", {W13: 9, W14: 0}, 168, {"21:45": W13, "22:15": W13}),  # both still on Sunday
    ("Asia/Tokyo", {W13: 7, W14: 2}, 168, {"21:45": W14, "22:15": W14}),  # both already on Monday morning
])
def test_the_time_zone_setting_moves_the_week_boundary(workflow, zone, docs, hours, late_sunday_utc):
    with override_settings(TIME_ZONE=zone):
        assert isoweeks.week_zone_name() == zone
        rollup.rebuild(workflow.pk)
        weeks = rollup.load_weeks([workflow.pk], [W13, W14])
        assert {m: week.docs if week else 0 for m, week in weeks.items()} == docs
        start, end = isoweeks.week_bounds(W13)
        assert start == datetime(2025, 3, 24, tzinfo=ZoneInfo(zone))
        assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=hours)
        for hhmm, monday in late_sunday_utc.items():
            moment = datetime.fromisoformat(f"2025-03-30T{hhmm}:00+00:00")
            assert isoweeks.week_start_of(moment) == monday, hhmm
