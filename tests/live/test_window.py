"""Throughput over the window, growing errors and backlog (pure), and HTML-safe node ids."""

from __future__ import annotations

from workflows.live.groups import dom_id
from workflows.live.window import Sample, Windows


def test_throughput_is_items_over_the_last_seconds_not_since_the_start():
    w = Windows(window=5)
    started = 0.0
    first = w.observe(1, "ext", Sample(1, 100.0, 1000, 0, 0), started)
    assert not first.windowed and first.rate == 10.0  # no history yet: the average since the start
    for i in range(1, 11):  # then 50 items a second for ten seconds
        trend = w.observe(1, "ext", Sample(1 + i, 100.0 + i, 1000 + 50 * i, 0, 0), started)
    assert trend.windowed and 45 <= trend.rate <= 55
    again = w.observe(1, "ext", Sample(11, 110.0, 1500, 0, 0), started)  # a row seen twice adds nothing
    assert again.rate == trend.rate


def test_growing_errors_and_backlog_are_flagged():
    w = Windows(window=5)
    w.observe(2, "cls", Sample(1, 10.0, 100, 1, 5), 0.0)
    calm = w.observe(2, "cls", Sample(2, 11.0, 200, 1, 5), 0.0)
    assert not calm.errors_growing and not calm.backlog_growing
    worse = w.observe(2, "cls", Sample(3, 12.0, 300, 4, 40), 0.0)
    assert worse.errors_growing and worse.backlog_growing


def test_the_cache_forgets_old_runs():
    w = Windows(max_runs=2)
    for run in (1, 2, 3):
        w.observe(run, "n", Sample(1, 1.0, 1, 0, 0), 0.0)
    assert list(w.runs) == [2, 3]


def test_node_ids_become_html_safe_ids_the_canvas_computes_the_same_way():
    assert dom_id("ext_2") == "ext_2"
    assert dom_id("my step") == "my_20_step"
    assert dom_id('a"b<c') == "a_22_b_3c_c"
