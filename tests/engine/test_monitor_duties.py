"""The monitor thread runs every duty each tick: a duty that reports nothing (None) or fails must not
keep the duties after it (mailboxes, retention, audit checkpoints) from running."""

from __future__ import annotations

import threading

import pytest

from workflows.engine.monitor import MonitorThread

pytestmark = pytest.mark.django_db


def test_every_duty_runs_though_one_reports_nothing_and_one_fails(caplog):
    ran = threading.Event()

    def quiet():
        return None

    def broken():
        raise RuntimeError("boom")

    def last():
        ran.set()
        return {"done": 1}

    monitor = MonitorThread(duties=[quiet, broken, last], interval=0.01)
    monitor.start()
    try:
        assert ran.wait(5), "the duty after a silent and a failing one never ran"
    finally:
        monitor.stop()
        monitor.join(5)
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failures and all("broken" in r.getMessage() for r in failures)


def test_the_audit_checkpoint_duty_reports_what_it_did(personas):
    from workflows.models.audit import checkpoint_tick, record

    record("a", actor=personas["admin"])
    assert checkpoint_tick() == {"audit_checkpoints": 1}
