"""The ASGI size guard: a body over its endpoint's cap is refused before Django spools it to disk."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.testing import ApplicationCommunicator


def http_scope(path: str, length: int | None, method: str = "POST") -> dict:
    headers = [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=x")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}


def run(coro):
    """On a thread of its own: a browser test's Playwright may have left an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_declared_gigabyte_gets_413_without_a_byte_read(settings):
    from factory.asgi import application

    async def go():
        communicator = ApplicationCommunicator(application, http_scope("/api/workflows/1/runs/", 1 << 30))
        # No body is ever sent: the answer must come from the header alone.
        start = await communicator.receive_output(timeout=5)
        body = await communicator.receive_output(timeout=5)
        await communicator.wait(timeout=5)
        return start, body

    start, body = run(go())
    assert start["status"] == 413
    assert b"1073.7 MB" in body["body"] and f"{settings.ENGINE_UPLOAD_MAX_BYTES / 1e6:.1f} MB".encode() in body["body"]


@pytest.mark.django_db(transaction=True)
def test_a_body_within_the_cap_reaches_django():
    from factory.asgi import application

    async def go():
        communicator = ApplicationCommunicator(application, http_scope("/api/workflows/", 2, method="POST"))
        await communicator.send_input({"type": "http.request", "body": b"{}", "more_body": False})
        start = await communicator.receive_output(timeout=10)
        await communicator.receive_output(timeout=10)  # the body
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(timeout=10)
        return start

    start = run(go())
    assert start["status"] in {401, 403}  # Django answered (no credentials), not the guard


def test_a_chunked_body_is_cut_off_at_the_cap(settings):
    from factory.asgi import application

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    seen = []

    async def go():
        communicator = ApplicationCommunicator(application, http_scope("/api/workflows/", None))
        for _ in range(3):  # 3 MB, no Content-Length
            await communicator.send_input({"type": "http.request", "body": b"x" * 1_000_000, "more_body": True})
        try:
            seen.append(await communicator.receive_output(timeout=5))
        except TimeoutError:
            pass
        await communicator.wait(timeout=5)

    run(go())
    assert not seen or seen[0].get("status") != 200
