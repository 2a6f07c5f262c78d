"""E-mail: one digest for several events, in the reader's language, through a real SMTP server; at most
every NOTIFY_DIGEST_MINUTES; preferences respected; without a mail server, in the app only, no error."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.notifications.conftest import free_port
from tests.test_i18n_python import write_mo
from workflows.models import Notification, NotificationPreference
from workflows.models import notifications as kinds
from workflows.notifications import Duty, notify
from workflows.notifications.digest import send_digests
from workflows.notifications.inbox import mark_read, remember_language

pytestmark = pytest.mark.django_db

ITALIAN = {
    "Cognitive Factory: %(count)s new notification\x00Cognitive Factory: %(count)s new notifications":
        "Cognitive Factory: %(count)s nuova notifica\x00Cognitive Factory: %(count)s nuove notifiche",
    "The weekly pack of %(workflow)s for %(week)s is ready to sign.":
        "Il pacchetto settimanale di %(workflow)s per la %(week)s è pronto da firmare.",
    "Hello %(name)s,": "Ciao %(name)s,",
}


@pytest.fixture
def italian(settings, tmp_path):
    # A catalogue of our own: the project's Italian is the lead's to write (changing LOCALE_PATHS empties
    # Django's translation caches, before and after).
    write_mo(tmp_path / "it" / "LC_MESSAGES" / "django.mo", ITALIAN)
    settings.LOCALE_PATHS = [tmp_path]


def _pack_ready(user, workflow: str, n: int = 1) -> None:
    notify(kinds.PACK_READY, {"workflow": workflow, "week": f"2026-W{n:02d}"}, key=f"pack:{workflow}:{n}",
           link=f"/workflows/{n}/kpis/packs/2026-W{n:02d}/", to=[user])


def test_several_events_make_one_email_with_every_one_and_its_link(personas, mail):
    owner = personas["business_owner"]
    for n, name in enumerate(["Triage", "Contracts", "Catalogue"], 1):
        _pack_ready(owner, name, n)
    assert send_digests() == 1
    [message] = mail.messages
    assert message["To"] == "business_owner@example.com" and message["From"] == "factory@example.it"
    assert message["Subject"] == "Cognitive Factory: 3 new notifications"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    for n, name in enumerate(["Triage", "Contracts", "Catalogue"], 1):
        assert f"The weekly pack of {name} for 2026-W{n:02d} is ready to sign." in body
        assert f"https://factory.example.it/workflows/{n}/kpis/packs/2026-W{n:02d}/" in body
    assert "https://factory.example.it/notifications/preferences/" in body
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    assert send_digests() == 0  # nothing pending: nothing sent


def test_the_digest_goes_at_most_every_period_and_then_carries_what_waited(personas, mail, settings):
    settings.NOTIFY_DIGEST_MINUTES = 15
    owner = personas["business_owner"]
    _pack_ready(owner, "Triage", 1)
    now = timezone.now()
    assert send_digests(now) == 1
    _pack_ready(owner, "Contracts", 2)
    _pack_ready(owner, "Catalogue", 3)
    assert send_digests(now + dt.timedelta(minutes=5)) == 0  # too soon after the last one
    assert send_digests(now + dt.timedelta(minutes=16)) == 1
    assert [m["Subject"] for m in mail.messages] == ["Cognitive Factory: 1 new notification",
                                                    "Cognitive Factory: 2 new notifications"]
    assert "Contracts" in mail.messages[1].get_content() and "Triage" not in mail.messages[1].get_content()


def test_an_italian_user_gets_italian(personas, mail, italian):
    owner = personas["business_owner"]
    remember_language(owner, "it")
    _pack_ready(owner, "Triage", 14)
    _pack_ready(owner, "Contratti", 15)
    _pack_ready(personas["admin"], "Triage", 14)  # an English reader of the same event
    assert send_digests() == 2
    [italian_mail] = mail.to("business_owner@example.com")
    assert italian_mail["Subject"] == "Cognitive Factory: 2 nuove notifiche"
    body = italian_mail.get_content()
    assert body.startswith("Ciao business_owner,")
    assert "Il pacchetto settimanale di Contratti per la 2026-W15 è pronto da firmare." in body
    [english_mail] = mail.to("admin@example.com")
    assert english_mail["Subject"] == "Cognitive Factory: 1 new notification"
    assert "The weekly pack of Triage for 2026-W14 is ready to sign." in english_mail.get_content()


def test_what_was_read_in_the_app_and_kinds_turned_off_are_not_mailed(personas, mail):
    owner = personas["business_owner"]
    NotificationPreference.objects.create(user=owner, kind=kinds.RUN_FAILED, in_app=True, email=False)
    notify(kinds.RUN_FAILED, {"run": 7, "workflow": "Triage", "total": 2}, key="run:7", to=[owner])
    _pack_ready(owner, "Seen", 1)
    _pack_ready(owner, "Unseen", 2)
    mark_read(Notification.objects.get(key="pack:Seen:1"))
    assert send_digests() == 1
    body = mail.messages[0].get_content()
    assert "Unseen" in body and "Seen for" not in body and "Run #7" not in body
    assert Notification.objects.get(key="run:7").in_app  # still in the inbox


def test_a_kind_turned_off_in_the_app_still_comes_by_email_and_both_off_is_nothing(personas, mail):
    owner = personas["business_owner"]
    NotificationPreference.objects.create(user=owner, kind=kinds.PACK_READY, in_app=False, email=True)
    NotificationPreference.objects.create(user=owner, kind=kinds.RUN_FAILED, in_app=False, email=False)
    _pack_ready(owner, "Triage", 1)
    notify(kinds.RUN_FAILED, {"run": 7}, key="run:7", to=[owner])
    assert list(Notification.objects.values_list("kind", "in_app", "email")) == [(kinds.PACK_READY, False, True)]
    assert send_digests() == 1 and "Triage" in mail.messages[0].get_content()


def test_without_a_mail_server_people_are_told_in_the_app_only(personas, no_mail):
    _pack_ready(personas["business_owner"], "Triage", 1)
    note = Notification.objects.get()
    assert note.in_app and not note.email
    assert send_digests() == 0
    assert Duty()()["digests"] == 0


def test_a_mail_server_that_is_down_keeps_the_digest_for_the_next_period(personas, mail, settings, caplog):
    owner = personas["business_owner"]
    _pack_ready(owner, "Triage", 1)
    running = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # nothing listens there
    now = timezone.now()
    assert send_digests(now) == 0
    assert "notification digest to user" in caplog.text
    assert Notification.objects.get().emailed_at is None
    settings.EMAIL_PORT = running
    assert send_digests(now + dt.timedelta(minutes=1)) == 0  # tried again one period later, not every tick
    assert send_digests(now + dt.timedelta(minutes=settings.NOTIFY_DIGEST_MINUTES)) == 1
    assert len(mail.messages) == 1


def test_users_without_an_address_are_told_in_the_app(personas, mail):
    owner = personas["business_owner"]
    owner.email = ""
    owner.save()
    _pack_ready(owner, "Triage", 1)
    assert not Notification.objects.get().email and send_digests() == 0


def test_the_monitor_duty_sends_digests_and_runs_each_check_once_per_period(personas, mail, settings):
    settings.NOTIFY_CHECK_MINUTES = 60
    ran = []
    duty = Duty(checks={"extra": lambda now: ran.append(now) or 1})
    _pack_ready(personas["business_owner"], "Triage", 1)
    now = timezone.now()
    assert duty(now) == {"digests": 1, "review_backlog": 0, "extra": 1}
    assert duty(now + dt.timedelta(minutes=5)) == {"digests": 0}  # every check already ran in this period
    assert Duty(checks={"extra": lambda now: ran.append(now) or 1})(now + dt.timedelta(minutes=61))["extra"] == 1
    assert len(ran) == 2 and len(mail.messages) == 1


def test_a_failing_check_is_logged_and_the_others_still_run(personas, mail, caplog):
    def broken(now):
        raise RuntimeError("the check broke")

    result = Duty(checks={"broken": broken, "fine": lambda now: 5})(timezone.now())
    assert result["fine"] == 5 and "broken" not in result
    assert "notification check broken failed" in caplog.text
