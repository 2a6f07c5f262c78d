"""Read-only live-metrics sockets: a run (`ws/runs/<run>/`) and a workflow's live or latest run
(`ws/workflows/<id>/live/`, the canvas).

Permission is checked before accept (refusals are closed with a 44xx code and audited); then the
full snapshot, then updates: `live.update` events on the run's and the workflow's groups, sent by
the worker's broadcaster after commit (push mode, channels-redis) or by this process's watcher of
the run (poll mode, live/watch.py). Either way one render serves every socket. Each socket also
looks at its run row now and then (a cancel, a new run for the canvas). A client message closes
the socket: every change goes through HTTP, where CSRF and permissions live.

A socket lives no longer than the right to watch: logging out closes the sockets of that session,
and a change of the user's roles (or deactivation) makes each of the user's sockets check again
(live/revocation.py sends both). One user holds at most LIVE_MAX_SOCKETS_PER_USER sockets in a web
process: each one costs a poller and a share of every broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import Http404
from django.utils import translation
from django.utils.translation import trans_real

from workflows import statuses as run_states
from workflows.access import get_run_for_user, get_workflow_for_user
from workflows.models import Run
from workflows.roles import can, deny

from . import snapshot, watch, watched
from .groups import (
    CLOSE_ANONYMOUS,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_READ_ONLY,
    CLOSE_TOO_MANY,
    SAFETY_POLL_SECONDS,
    SLOW_POLL_SECONDS,
    push_mode,
    run_group,
    session_group,
    user_group,
    workflow_group,
)

logger = logging.getLogger(__name__)


ANONYMOUS_AUDIT_WINDOW = 600  # seconds
# Open sockets per user in this process (consumers share one event loop: no lock needed).
OPEN_SOCKETS: Counter[int] = Counter()


class Refused(Exception):
    def __init__(self, code: int):
        self.code = code


def _deny(user: Any, capability: str, **data: Any) -> None:
    deny(user, capability, channel="websocket", **data)


def _authorise(user: Any, *, capability: str, allowed: bool, object_type: str, object_id: Any,
               fetch: Callable[[Any, Any], Any], address: str = "") -> Any:
    """The object if the user may watch it; else Refused with the close code that says why (audited)."""
    if not getattr(user, "is_authenticated", False):
        # One audit row per address and object per window: a script reconnecting without a session
        # would otherwise write a row per attempt (what a refusal costs must not be what it records).
        if cache.add(f"ws-anonymous:{address}:{object_type}:{object_id}", 1, ANONYMOUS_AUDIT_WINDOW):
            _deny(None, capability, object_type=object_type, object_id=object_id, reason="anonymous",
                  address=address, window_seconds=ANONYMOUS_AUDIT_WINDOW)
        raise Refused(CLOSE_ANONYMOUS)
    if not allowed:
        _deny(user, capability, object_type=object_type, object_id=object_id)
        raise Refused(CLOSE_FORBIDDEN)
    try:
        return fetch(user, object_id)
    except Http404:
        raise Refused(CLOSE_NOT_FOUND) from None


def authorise_run(user: Any, run_id: Any, address: str = "") -> Any:
    """The run if the user may watch it, as get_run_for_user asks it."""
    return _authorise(user, capability="run.view", allowed=can(user, "run.view"), object_type="workflows.run",
                      object_id=run_id, fetch=get_run_for_user, address=address)


def authorise_workflow(user: Any, workflow_id: Any, address: str = "") -> Any:
    """The workflow if the user may watch its live run (seeing workflows and runs both)."""
    allowed = can(user, "workflow.view") and can(user, "run.view")
    return _authorise(user, capability="run.view" if getattr(user, "is_authenticated", False) else "workflow.view",
                      allowed=allowed, object_type="workflows.workflow", object_id=workflow_id,
                      fetch=get_workflow_for_user, address=address)


def current_run_id(workflow_id: int) -> int | None:
    """The run a workflow's canvas shows: its latest. An open live (intake) run that is older does not
    hold the canvas: a run started after it is what the person just did, and what they want to see."""
    return Run.objects.filter(workflow_id=workflow_id).order_by("-id").values_list("id", flat=True).first()


class Tracker:
    """What one socket has been sent, and what to send next. Synchronous (database access)."""

    def __init__(self, kind: str, run_id: int | None, workflow_id: int | None = None, language: str = "",
                 clock: Callable[[], float] = time.monotonic):
        self.kind = kind
        self.clock = clock
        self.heard_at = float("-inf")  # when the last update for this socket's run arrived
        self.language = language or settings.LANGUAGE_CODE  # the fragments are rendered in it
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.batches: dict[str, int] = {}  # per node: the batch count of the stats this socket got
        self.signature: tuple | None = None  # the run line this socket got (counts, status) …
        self.read_at: dict[str, int] = {}  # … and the batch counts of the snapshot it was read in

    def snapshot(self) -> list[str]:
        if self.run_id is None:
            return snapshot.render_empty_canvas(self.workflow_id or 0)
        state = snapshot.load(self.run_id)
        if state is None:
            return []
        self.batches = state.batches
        self.read_at, self.signature = state.batches, state.signature
        with translation.override(self.language):
            return snapshot.render(state, self.kind)

    def follow(self) -> list[str] | None:
        """Canvas only: a newer run of the workflow takes over the canvas (and gets a snapshot)."""
        if self.kind != "canvas" or self.workflow_id is None:
            return None
        latest = current_run_id(self.workflow_id)
        if latest is None or latest == self.run_id:
            return None
        self.run_id = latest
        return self.snapshot()

    def poll(self) -> list[str] | None:
        """The canvas's newer run, or the run row if it changed (what no batch commit announces)."""
        switched = self.follow()
        if switched is not None:
            return switched
        if self.run_id is None or self.clock() - self.heard_at < SAFETY_POLL_SECONDS:
            # Updates are coming: their sender announces the run row's changes too, and a read per
            # socket costs a connection each (50 sockets on a running run: 45 % of daphne's CPU).
            return None
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None or snapshot.run_signature(run) == self.signature:
            return None
        state = snapshot.load(self.run_id, set())
        if state is None:
            return None
        self.read_at, self.signature = state.batches, state.signature
        with translation.override(self.language):
            return snapshot.render(state, self.kind)

    def older_run_line(self, batches: dict[str, int], signature: list | tuple) -> bool:
        """Whether a run line read with these batch counts is older than the one this socket shows.

        Two workers' events cross, a status-only event names no node, and this socket's own poll
        reads the run row between events. Each update is read in one snapshot (snapshot.load), where
        batch counts, the item count, the done count only grow, a live run only stops being live,
        a final status goes back to running only with a retry (which lowers the dead count), and a
        waiting run only with a reviewer's decision (which lowers the parked count)."""
        if self.signature is None:
            return False
        if any(self.read_at.get(n, -1) > b for n, b in batches.items()):
            return True
        status, total, done, dead, parked, live = signature
        sent_status, sent_total, sent_done, sent_dead, sent_parked, sent_live = self.signature
        final = run_states.FINAL_RUN_STATUSES
        return (total < sent_total or done < sent_done or (live and not sent_live)
                or (sent_status in final and status not in final and dead >= sent_dead)
                or (sent_status == run_states.WAITING and status == run_states.RUNNING and parked >= sent_parked))

    def apply(self, event: dict[str, Any]) -> list[str] | None:
        """A `live.update` event (broadcaster or watcher): the frames for this kind of page, if for our
        run and newer than what the socket shows. Newer node stats with an older run line go without it."""
        if event["run"] != self.run_id:
            return None
        rendered = event["html"] if self.language == settings.LANGUAGE_CODE else event.get("translated", {}).get(
            self.language, {})
        html = rendered.get(self.kind)
        if html is None:
            return None  # not rendered for this page and language (its watch mark was not seen yet)
        self.heard_at = self.clock()
        if any(self.batches.get(n, -1) > event["batches"].get(n, -1) for n in event["nodes"]):
            return None  # older stats than we sent
        stale_line = self.older_run_line(event["batches"], event["signature"])
        if stale_line and not event["nodes"]:
            return None
        self.batches.update({n: event["batches"][n] for n in event["nodes"] if n in event["batches"]})
        if stale_line:
            return snapshot.without_run_line(html, self.kind, self.run_id)
        self.read_at, self.signature = dict(event["batches"]), tuple(event["signature"])
        return html


class LiveConsumer(AsyncWebsocketConsumer):
    kind = "run"
    # How often the socket looks at its run row itself (the canvas also for a newer run).
    poll_seconds = SAFETY_POLL_SECONDS

    @property
    def language(self) -> str:
        """The page's language, chosen as LocaleMiddleware chose it for the page: the language cookie,
        then Accept-Language, then the default (the socket's handshake carries both)."""
        cookie = (self.scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
        headers = dict(self.scope.get("headers") or [])
        wanted = [cookie] if cookie else []
        accept = headers.get(b"accept-language", b"").decode("latin-1")[:500]
        wanted += [code for code, _ in trans_real.parse_accept_lang_header(accept) if code != "*"]
        for code in wanted:
            try:
                return trans_real.get_supported_language_variant(code)
            except LookupError:
                continue
        return settings.LANGUAGE_CODE

    @property
    def address(self) -> str:
        client = self.scope.get("client") or ("",)
        return str(client[0] or "")

    async def connect(self) -> None:
        self.tracker: Tracker | None = None
        self.poller: asyncio.Task | None = None
        self.watched: int | None = None
        self.lock = asyncio.Lock()
        self.joined: list[str] = []
        self.counted: int | None = None
        try:
            self.tracker, groups = await database_sync_to_async(self.authorise)()
        except Refused as refused:
            await self.close(code=refused.code)
            return
        user_id = self.scope["user"].pk
        if OPEN_SOCKETS[user_id] >= settings.LIVE_MAX_SOCKETS_PER_USER:
            await self.close(code=CLOSE_TOO_MANY)
            return
        OPEN_SOCKETS[user_id] += 1
        self.counted = user_id
        self.push = push_mode()
        groups = [*groups, user_group(user_id)]
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            groups.append(session_group(session_key))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        async with self.lock:
            await self.mark_watched()
            await self.watch(self.tracker.run_id)  # before the snapshot: nothing falls in between
            await self.send_frames(await database_sync_to_async(self.tracker.snapshot)())
        self.poller = asyncio.ensure_future(self.poll_forever())

    def authorise(self) -> tuple[Tracker, list[str]]:
        user = self.scope.get("user")
        run = authorise_run(user, self.scope["url_route"]["kwargs"]["run"], self.address)
        return Tracker("run", run.pk, run.workflow_id, self.language), [run_group(run.pk)]

    async def mark_watched(self) -> None:
        """Push mode: the worker renders this workflow's runs while a socket is on it (live/watched.py)."""
        if self.push:
            await sync_to_async(watched.mark, thread_sensitive=False)(
                self.tracker.workflow_id, self.tracker.kind, self.tracker.language)

    async def watch(self, run_id: int | None) -> None:
        """Poll mode: share this process's watcher of the run (live/watch.py)."""
        if self.push or run_id == self.watched:
            return
        if self.watched is not None:
            await watch.release(self.watched)
            self.watched = None
        if run_id is not None:
            await watch.acquire(run_id, self.channel_layer)
            self.watched = run_id

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                async with self.lock:
                    await self.mark_watched()
                    frames = await database_sync_to_async(self.tracker.poll)()
                    await self.watch(self.tracker.run_id)
                    await self.send_frames(frames)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live poll failed")

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", None) is not None:
            OPEN_SOCKETS[self.counted] -= 1
            if OPEN_SOCKETS[self.counted] <= 0:
                del OPEN_SOCKETS[self.counted]
            self.counted = None
        if getattr(self, "poller", None) is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.poller
        if getattr(self, "watched", None) is not None:
            await watch.release(self.watched)
            self.watched = None
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def live_revoke(self, event: dict[str, Any]) -> None:
        """Close with the event's code, or (no code: the user's roles changed) when the right is gone."""
        code = event.get("code")
        if code is None:
            try:
                await database_sync_to_async(self.reauthorise)()
                return
            except Refused as refused:
                code = refused.code
        await self.close(code=code)

    def reauthorise(self) -> None:
        """The user as the database has it now must still pass authorise(); Refused otherwise."""
        user = get_user_model().objects.filter(pk=self.scope["user"].pk, is_active=True).first()
        if user is None:
            raise Refused(CLOSE_FORBIDDEN)
        self.scope["user"] = user
        self.authorise()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.close(code=CLOSE_READ_ONLY)

    async def live_update(self, event: dict[str, Any]) -> None:
        if self.tracker is None:
            return
        async with self.lock:
            if self.tracker.kind == "canvas" and event["run"] > (self.tracker.run_id or 0):
                frames = await database_sync_to_async(self.tracker.follow)()
                await self.watch(self.tracker.run_id)
            else:
                frames = self.tracker.apply(event)
            await self.send_frames(frames)

    async def send_frames(self, frames: list[str] | None) -> None:
        for frame in frames or ():
            await self.send(text_data=frame)


class WorkflowLiveConsumer(LiveConsumer):
    kind = "canvas"
    poll_seconds = SLOW_POLL_SECONDS

    def authorise(self) -> tuple[Tracker, list[str]]:
        user = self.scope.get("user")
        workflow = authorise_workflow(user, self.scope["url_route"]["kwargs"]["workflow"], self.address)
        return (Tracker("canvas", current_run_id(workflow.pk), workflow.pk, self.language),
                [workflow_group(workflow.pk)])
