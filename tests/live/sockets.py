"""Running socket tests: communicators, whole messages, and an event loop of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a test's async part in a thread with its own loop (not async_to_sync: once a browser test
    has run, Playwright's sync API holds a loop in the main thread). The consumer's database calls
    run in asgiref's one sync thread, whose connection is closed at the end."""

    async def main() -> T:
        try:
            return await fn()
        finally:
            await database_sync_to_async(connections.close_all)()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def communicator(path: str, user=None) -> WebsocketCommunicator:
    """The routes without the origin and session middleware: the user goes straight in the scope."""
    from django.contrib.auth.models import AnonymousUser

    from workflows.live.routing import websocket_urlpatterns

    com = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    com.scope["user"] = user if user is not None else AnonymousUser()
    return com


async def receive(com: WebsocketCommunicator, timeout: float = 3, frames: int | None = None) -> str:
    """The next frames joined: `frames` of them, or every frame that follows within 50 ms."""
    got = [await com.receive_from(timeout=timeout)]
    while (len(got) < frames) if frames else not await com.receive_nothing(timeout=0.05):
        got.append(await com.receive_from(timeout=timeout))
    return "\n".join(got)
