"""The duty wired into a real `run_worker`: its monitor thread mails the digest to a real SMTP server
and runs the periodic checks, with no other help from the test."""

from __future__ import annotations

import time

import pytest

from tests.engine.test_worker import workers  # noqa: F401  (the real worker subprocesses)
from workflows.models import Notification, NotificationCheck
from workflows.models import notifications as kinds
from workflows.notifications import notify


def wait_until(condition, what: str, running, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s\n{running.logs()}")


@pytest.mark.slow
def test_a_worker_mails_the_digest_and_runs_the_checks(personas, mail, workers, settings):  # noqa: F811
    owner = personas["business_owner"]
    for n in (1, 2):
        notify(kinds.PACK_READY, {"workflow": f"Line {n}", "week": "2026-W14"}, key=f"pack:{n}", to=[owner])
    started = workers(EMAIL_HOST=settings.EMAIL_HOST, EMAIL_PORT=str(settings.EMAIL_PORT),
                      DEFAULT_FROM_EMAIL="factory@example.it", NOTIFY_REVIEW_BACKLOG="0",
                      NOTIFY_REVIEW_SLA_HOURS="0")
    started.start()
    wait_until(lambda: len(mail.messages) == 1, "the digest", started)
    assert mail.messages[0]["Subject"] == "Cognitive Factory: 2 new notifications"
    wait_until(lambda: not Notification.objects.filter(emailed_at__isnull=True).exists(), "marking it sent", started)
    wait_until(lambda: set(NotificationCheck.objects.values_list("name", flat=True)) >= {"review_backlog", "drift",
                                                                                        "packs"},
               "the periodic checks", started)
