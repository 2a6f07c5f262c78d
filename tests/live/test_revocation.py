"""Sockets end with the right to watch: logging out closes the session's sockets, losing the role
closes the user's, and one user cannot hold more than LIVE_MAX_SOCKETS_PER_USER at once."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from tests.live.sockets import communicator, receive, run_async
from workflows.live.groups import CLOSE_ANONYMOUS, CLOSE_FORBIDDEN, CLOSE_TOO_MANY

pytestmark = pytest.mark.django_db(transaction=True)


def _with_session(path: str, user, session_key: str | None):
    com = communicator(path, user)
    com.scope["session"] = SessionStore(session_key)
    return com


def test_logging_out_closes_the_sessions_sockets_and_not_the_other_sessions(make_run, personas):
    run = make_run(8)
    operator = personas["operator"]
    phone, laptop = Client(), Client()
    phone.force_login(operator)
    laptop.force_login(operator)

    async def go():
        on_phone = _with_session(f"/ws/runs/{run.pk}/", operator, phone.session.session_key)
        on_laptop = _with_session(f"/ws/runs/{run.pk}/", operator, laptop.session.session_key)
        assert (await on_phone.connect())[0] and (await on_laptop.connect())[0]
        await receive(on_phone, frames=1)
        await receive(on_laptop, frames=1)
        await database_sync_to_async(phone.logout)()
        closed = await on_phone.receive_output(timeout=3)
        still_open = await on_laptop.receive_nothing(timeout=0.5)
        await on_laptop.disconnect()
        return closed, still_open

    closed, still_open = run_async(go)
    assert closed == {"type": "websocket.close", "code": CLOSE_ANONYMOUS}
    assert still_open


def test_losing_the_role_closes_the_users_sockets(make_run, personas):
    run = make_run(8)
    operator = personas["operator"]

    async def go():
        com = communicator(f"/ws/runs/{run.pk}/", operator)
        assert (await com.connect())[0]
        await receive(com, frames=1)
        await database_sync_to_async(operator.groups.clear)()
        return await com.receive_output(timeout=3)

    assert run_async(go) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


def test_a_role_change_that_keeps_the_right_keeps_the_socket(make_run, personas):
    run = make_run(8)
    operator = personas["operator"]
    extra, _ = Group.objects.get_or_create(name="business_owner")

    async def go():
        com = communicator(f"/ws/runs/{run.pk}/", operator)
        assert (await com.connect())[0]
        await receive(com, frames=1)
        await database_sync_to_async(operator.groups.add)(extra)
        await database_sync_to_async(operator.groups.remove)(extra)
        quiet = await com.receive_nothing(timeout=0.8)
        await com.disconnect()
        return quiet

    assert run_async(go)


def test_one_user_holds_at_most_the_cap_of_sockets(make_run, personas, settings):
    settings.LIVE_MAX_SOCKETS_PER_USER = 2
    run = make_run(8)
    operator = personas["operator"]

    async def go():
        first, second, third = (communicator(f"/ws/runs/{run.pk}/", operator) for _ in range(3))
        assert (await first.connect())[0] and (await second.connect())[0]
        refused = await third.connect()
        await first.disconnect()
        again = communicator(f"/ws/runs/{run.pk}/", operator)
        accepted = (await again.connect())[0]
        await second.disconnect()
        await again.disconnect()
        return refused, accepted

    refused, accepted = run_async(go)
    assert refused == (False, CLOSE_TOO_MANY) and accepted
