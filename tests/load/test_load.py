"""Load: the real stack under 50 watching sockets and 20 intake clients, for a bounded time.

daphne (factory.asgi) on a free port and two `run_worker` processes, on the test database and the
Redis channel layer (with a channel prefix of this test's own: colleagues share the Redis server).
A workflow with a REST intake source and cheap real nodes (pattern extraction, a route, a table).
SOCKETS websocket clients watch its live run (ws/runs/<id>/, each with a real session cookie) while
POSTERS HTTP clients post batches of 1–19 items to /api/workflows/<id>/intake/ with a token, each
once a second on a fixed schedule (open loop: a slow answer does not slow the offered load down),
for CF_LOAD_SECONDS (60). Then the run drains and is closed, and the test asserts: no HTTP error,
no socket error or disconnect, every returned item id done with exactly one decision per node
(0 lost, 0 duplicates), and every socket saw counts that never went back and ended equal to the
database.

Figures, printed and, with CF_RELIABILITY_DIR set, written to load.json for bench/report.py:
intake POST latency p50/p95; push latency p50/p95 (a worker's batch commit → a socket receives
the stats that include it, measured as bench/live.py does: tests/load/probe.py notes the commits);
item latency (received → done) and items/s. No timing is asserted: the machine is shared.

    CF_LOAD_SECONDS=10 .venv/bin/python -m pytest tests/load -q -s     # a shorter run while working
"""

from __future__ import annotations

import asyncio
import bisect
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from tests.builders import node
from tests.engine.helpers import make_runnable_workflow, pattern_graph, tickets
from tests.engine.test_worker import ROOT, Workers
from workflows import statuses
from workflows.engine import launch
from workflows.models import Decision, Item, NodeStats, Run

pytestmark = [pytest.mark.worker, pytest.mark.slow]

SECONDS = float(os.environ.get("CF_LOAD_SECONDS", "60"))
SOCKETS = int(os.environ.get("CF_LOAD_SOCKETS", "50"))
POSTERS = int(os.environ.get("CF_LOAD_POSTERS", "20"))
WORKERS = 2
EVERY = 1.0  # seconds between one poster's requests
MAX_BATCH = 19  # items per request: 1–19, 10 on average (≈ 200 items/s from 20 posters)
NODES = ("src", "ext", "route", "out")
CONNECTING = 5  # sockets in their handshake and first snapshot at once

STATUS = re.compile(r'id="run-(\d+)-status"[^>]*?data-status="(\w+)" data-finished="(\d+)" data-total="(\d+)"')
STATS = re.compile(r'id="live-(\d+)-([^"]+)-stats"[^>]*?data-batches="(\d+)">\s*<div><dt>processed</dt>'
                   r'<dd class="live-in">(\d+)</dd>')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what, step: float = 0.1) -> None:
    """Until check() is true; else AssertionError naming `what` (a string, or a callable for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


class Stack:
    """daphne and the workers as subprocesses on the test database; `logs()` for failure messages."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.probe = tmp_path / "commits.txt"
        self.port = free_port()
        self.workers = Workers(tmp_path, CHANNEL_PREFIX=f"load{os.getpid()}", LOAD_PROBE_FILE=str(self.probe),
                               ENGINE_HANDLER_MODULES="workflows.engine.nodes.models,tests.load.probe")
        # Production defaults for what the chaos tests shorten (nothing here kills a worker).
        self.workers.env.pop("ENGINE_STALE_SECONDS")
        self.workers.env.update(ENGINE_MONITOR_SECONDS="1")
        self.daphne: subprocess.Popen | None = None

    def start(self) -> None:
        web = {k: v for k, v in self.workers.env.items() if k not in {"ENGINE_HANDLER_MODULES", "LOAD_PROBE_FILE"}}
        web["SECURE_SSL_REDIRECT"] = "0"  # DEBUG=0 as in production, plain http on loopback
        web["SECRET_KEY"] = settings.SECRET_KEY  # the sessions this process signs for the sockets
        self.daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "factory.asgi:application"],
            cwd=ROOT, env=web, stdout=subprocess.DEVNULL, stderr=open(self.tmp_path / "daphne.log", "w"))
        for i in range(WORKERS):
            self.workers.start(f"load{i}")
        wait_until(self.listening, 60, "daphne to listen")

    def listening(self) -> bool:
        assert self.daphne.poll() is None, f"daphne exited with {self.daphne.returncode}\n{self.logs()}"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the web process, the workers and this process (the clients)."""
        return {"web": cpu_seconds(self.daphne.pid), "workers": sum(cpu_seconds(p.pid) for p in self.workers.procs),
                "clients": cpu_seconds(os.getpid())}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp_path.glob("*.log")))

    def stop(self) -> None:
        if self.daphne is not None and self.daphne.poll() is None:
            self.daphne.terminate()
            try:
                self.daphne.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
        self.workers.stop()


@pytest.fixture
def stack(transactional_db, tmp_path):
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        if os.environ.get("CI"):
            pytest.fail("the load test runs the production profile: DATABASE_URL (PostgreSQL) and REDIS_URL "
                        "must be set in CI")
        pytest.skip("the load test runs the production profile: set DATABASE_URL (PostgreSQL) and REDIS_URL")
    running = Stack(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


# -- HTTP: intake clients ---------------------------------------------------------------------------

@dataclass
class Posts:
    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    runs: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    server_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_items(port: int, path: str, token: str, items: list[dict], posts: Posts) -> None:
    body = json.dumps({"items": items})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    with posts.lock:
        posts.requests += 1
    started = time.perf_counter()
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        data = response.read()
        took = (time.perf_counter() - started) * 1000
    except Exception as exc:  # a refused, reset or timed-out request is an error like a 5xx
        with posts.lock:
            posts.errors.append(f"{type(exc).__name__}: {exc}")
        return
    finally:
        conn.close()
    with posts.lock:
        posts.latencies_ms.append(took)
        if response.status != 202:
            posts.server_errors += response.status >= 500
            posts.errors.append(f"{response.status}: {data[:300]!r}")
            return
        answer = json.loads(data)
        if len(answer["item_ids"]) != len(items):
            posts.errors.append(f"{len(items)} items posted, {len(answer['item_ids'])} ids returned")
        posts.item_ids += answer["item_ids"]
        posts.runs.add(answer["run"])


def poster(slot: int, port: int, path: str, token: str, start: float, deadline: float, posts: Posts) -> None:
    rng = random.Random(slot)
    texts = tickets(MAX_BATCH * 4)
    due = start + slot * EVERY / POSTERS  # staggered: 20 posters, one request every 50 ms
    sent = 0
    while due < deadline and time.monotonic() < deadline:  # a slow server gets fewer requests, not more time
        time.sleep(max(0.0, due - time.monotonic()))
        count = rng.randint(1, MAX_BATCH)
        items = [{**texts[(sent + i) % len(texts)], "ref": f"p{slot}-{sent + i}"} for i in range(count)]
        post_items(port, path, token, items, posts)
        sent += count
        due += EVERY


# -- Websockets: watchers of the run page ---------------------------------------------------------

@dataclass
class Watcher:
    run_id: int
    frames: int = 0
    status: tuple[str, int, int] | None = None  # (status, finished, total) last received
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (batches, items in) last received
    ext: list[tuple[float, int]] = field(default_factory=list)  # (arrival, ext batches) of every update
    regressions: list[str] = field(default_factory=list)
    error: str | None = None
    closing: bool = False
    socket: object = None

    def receive(self, text: str, at: float) -> None:
        self.frames += 1
        for run, status, finished, total in STATUS.findall(text):
            if int(run) != self.run_id:
                continue
            new = (status, int(finished), int(total))
            old = self.status
            if old and (new[1] < old[1] or new[2] < old[2]
                        or (old[0] in statuses.FINAL_RUN_STATUSES and new[0] != old[0])):
                self.regressions.append(f"status {old} then {new}")
            self.status = new
        for run, node_id, batches, items_in in STATS.findall(text):
            if int(run) != self.run_id:
                continue
            new_stats, old_stats = (int(batches), int(items_in)), self.stats.get(node_id)
            if old_stats and (new_stats[0] < old_stats[0] or new_stats[1] < old_stats[1]):
                self.regressions.append(f"{node_id} (batches, in) {old_stats} then {new_stats}")
            self.stats[node_id] = new_stats
            if node_id == "ext":
                self.ext.append((at, new_stats[0]))

    async def watch(self, url: str, origin: str, cookie: str, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        try:
            async with gate:  # people open the page one after the other, not 50 in the same millisecond
                # No client pings, like a browser; daphne pings and the library answers.
                ws = await connect(url, origin=origin, additional_headers={"Cookie": cookie}, ping_interval=None,
                                   proxy=None, open_timeout=60, max_size=2**23)
                self.socket = ws
                self.receive(await ws.recv(), time.time())  # the snapshot
            async with ws:
                async for message in ws:
                    self.receive(message if isinstance(message, str) else message.decode(), time.time())
                if not self.closing:
                    self.error = f"closed by the server: {ws.close_code} {ws.close_reason}"
        except Exception as exc:
            if not self.closing:  # what happens while the test closes the sockets is not the server's fault
                self.error = f"{type(exc).__name__}: {exc}"


class Watchers:
    """The sockets on an event loop thread of their own (the test's thread polls the database)."""

    def __init__(self, port: int, run_id: int, cookies: list[str]):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="load-sockets").start()
        self.all = [Watcher(run_id) for _ in cookies]
        url, origin = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", f"http://127.0.0.1:{port}"
        gate = asyncio.Semaphore(CONNECTING)
        self.tasks = [asyncio.run_coroutine_threadsafe(w.watch(url, origin, c, gate), self.loop)
                      for w, c in zip(self.all, cookies, strict=True)]

    def close(self) -> None:
        async def close_all() -> None:
            for w in self.all:
                w.closing = True
            await asyncio.gather(*(w.socket.close() for w in self.all if w.socket is not None), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(30)
        for task in self.tasks:
            task.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def push_delays(watchers: list[Watcher], probe: Path, run_id: int, since: float) -> tuple[list[float], int]:
    """(delays in ms, commits never seen): for each ext batch commit after `since` and each socket,
    the first update whose ext `batches` count includes it, minus the commit time (bench/live.py)."""
    commits = []
    for line in probe.read_text().splitlines():
        run, at, nodes = line.split(" ", 2)
        if int(run) == run_id and "ext" in nodes.split(","):
            commits.append(float(at))
    commits.sort()  # NodeStats rows are locked per batch: the k-th commit made `batches` k
    delays, missing = [], 0
    for w in watchers:
        times = [at for at, _ in w.ext]
        highest = []  # the highest ext batches seen by each arrival (regressions are counted apart)
        for _, batches in w.ext:
            highest.append(max(batches, highest[-1] if highest else 0))
        for k, committed in enumerate(commits, start=1):
            if committed <= since:
                continue
            i = bisect.bisect_left(highest, k)
            if i == len(highest):
                missing += 1
            else:
                delays.append(max(0.0, times[i] - committed) * 1000)
    return delays, missing


def session_cookies(user, count: int) -> list[str]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    cookies = []
    for _ in range(count):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"sessionid={session.session_key}")
    return cookies


def write_figures(figures: dict) -> None:
    folder = os.environ.get("CF_RELIABILITY_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "load.json").write_text(json.dumps(figures, indent=2) + "\n")


def test_fifty_sockets_watch_a_live_run_while_twenty_clients_post_to_intake(stack, personas):
    from rest_framework.authtoken.models import Token

    graph = pattern_graph()
    graph["nodes"][0] = node("src", "source.rest", fields=["text", "lang"])
    workflow = make_runnable_workflow(personas["designer"], graph, name="Load")
    token = Token.objects.create(user=personas["operator"]).key
    path = f"/api/workflows/{workflow.pk}/intake/"
    posts = Posts()

    # The live run starts with the first item; the workers warm up on it (the tail flushes when quiet).
    post_items(stack.port, path, token, tickets(1), posts)
    assert not posts.errors, f"{posts.errors}\n{stack.logs()}"
    run = Run.objects.get(pk=posts.runs.pop())
    posts.runs.add(run.pk)
    wait_until(lambda: Run.objects.get(pk=run.pk).items_done == 1, 60,
               lambda: f"the first item to be done\n{stack.logs()}")
    warm_up = list(posts.item_ids)
    posts.latencies_ms.clear()
    posts.requests = 0

    watchers = Watchers(stack.port, run.pk, session_cookies(personas["operator"], SOCKETS))
    try:
        wait_until(lambda: all(w.status or w.error for w in watchers.all), 60, "every socket's snapshot")
        subscribed = time.time()
        cpu_before = stack.cpu()
        start = time.monotonic()
        with ThreadPoolExecutor(POSTERS) as pool:
            for future in [pool.submit(poster, slot, stack.port, path, token, start, start + SECONDS, posts)
                           for slot in range(POSTERS)]:
                future.result()
        posted_for = time.monotonic() - start
        cpu = {k: round(v - cpu_before[k], 1) for k, v in stack.cpu().items()}

        # Drain: the tail is sharded once intake is quiet; then close the run as a new version would.
        def drained() -> bool:
            r = Run.objects.get(pk=run.pk)
            return r.items_done + r.items_dead + r.items_parked == r.items_total and r.sharded_upto == r.items_total

        stuck = None  # items that never finish are counted as lost below, and fail the test
        try:
            wait_until(drained, 120 + SECONDS, f"run {run.pk} to drain", step=0.25)
            drain_seconds = time.monotonic() - start - posted_for
            with transaction.atomic():
                launch.close_live_run(Run.objects.select_for_update().get(pk=run.pk))
            wait_until(lambda: Run.objects.get(pk=run.pk).status in statuses.FINAL_RUN_STATUSES, 60,
                       f"run {run.pk} to finish")
        except AssertionError as exc:
            stuck, drain_seconds = f"{exc}\n{stack.logs()}", None
        run.refresh_from_db()
        final_stats = {r.node: (r.batches, r.items_in) for r in NodeStats.objects.filter(run=run)}
        final_status = (run.status, run.items_done + run.items_dead, run.items_total)

        def settled(w: Watcher) -> bool:
            return w.error is not None or (w.status == final_status and w.stats == final_stats)

        try:
            wait_until(lambda: all(settled(w) for w in watchers.all), 30, "every socket to show the final counts")
        except AssertionError:
            pass  # counted below, socket by socket
    finally:
        watchers.close()

    ids = posts.item_ids
    done = set(Item.objects.filter(run=run, id__in=ids, status=Item.DONE).values_list("id", flat=True))
    reached_sink = set(Decision.objects.filter(run=run, node="out", item_id__in=ids).values_list("item_id", flat=True))
    decisions = Decision.objects.filter(run=run).count()
    pairs = Decision.objects.filter(run=run).values("item", "node").distinct().count()
    wrong_count = Decision.objects.filter(run=run).values("item").annotate(n=Count("id")).exclude(n=len(NODES)).count()
    lost = len(set(ids) - (done & reached_sink))
    duplicates = (decisions - pairs) + (len(ids) - len(set(ids)))
    ws_errors = [w.error for w in watchers.all if w.error]
    regressions = [r for w in watchers.all for r in w.regressions]
    unsettled = [(w.status, w.stats) for w in watchers.all
                 if not w.error and (w.status != final_status or w.stats != final_stats)]
    delays, never_seen = push_delays(watchers.all, stack.probe, run.pk, subscribed)
    # For a closer look after a failure: what each socket received when (with the workers' commits.txt).
    (stack.tmp_path / "arrivals.json").write_text(json.dumps({"subscribed": subscribed,
                                                              "ext": [w.ext for w in watchers.all]}))
    # Items of the load, without the warm-up item (posted before the sockets came).
    times = list(Item.objects.filter(run=run, id__in=ids, finished_at__isnull=False).exclude(id__in=warm_up)
                 .values_list("received_at", "finished_at"))
    item_ms = [(f - r).total_seconds() * 1000 for r, f in times]
    span = (max(f for _, f in times) - min(r for r, _ in times)).total_seconds() if times else 0

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    figures = {
        "seconds": round(posted_for, 1), "ws_clients": SOCKETS, "posters": POSTERS, "workers": WORKERS,
        "requests": posts.requests,
        "items_posted": len(ids), "items_lost": lost, "duplicates": duplicates,
        "http_errors": len(posts.errors), "http_5xx": posts.server_errors,
        "ws_errors": len(ws_errors) + len(unsettled), "ws_regressions": len(regressions),
        "ws_frames": sum(w.frames for w in watchers.all),
        "intake_p50_ms": ms(percentile(posts.latencies_ms, 0.5)),
        "intake_p95_ms": ms(percentile(posts.latencies_ms, 0.95)),
        "push_p50_ms": ms(percentile(delays, 0.5)), "push_p95_ms": ms(percentile(delays, 0.95)),
        "push_pairs": len(delays),
        "item_p50_ms": ms(percentile(item_ms, 0.5)), "item_p95_ms": ms(percentile(item_ms, 0.95)),
        "items_per_s": round(len(times) / span, 1) if span else None,
        "drain_seconds": None if drain_seconds is None else round(drain_seconds, 1),
        "cpu_seconds": cpu,
    }
    write_figures(figures)
    print(f"\nload: {POSTERS} posters for {posted_for:.0f} s, {SOCKETS} sockets, {WORKERS} workers, "
          f"run {run.pk} {run.status}")
    print("  " + " ".join(f"{k}={v}" for k, v in figures.items() if k != "cpu_seconds"))
    print(f"  CPU seconds while posting: {cpu} (of {os.cpu_count() * posted_for:.0f} on {os.cpu_count()} cores)")

    runs = list(Run.objects.filter(workflow=workflow)
                .values_list("id", "status", "is_live", "items_total", "items_done"))
    print(f"  runs of the workflow (id, status, live, total, done): {runs}")
    if lost:
        not_done = dict(Item.objects.filter(id__in=ids).exclude(status=Item.DONE)
                        .values_list("status").annotate(n=Count("id")))
        elsewhere = Item.objects.filter(id__in=ids).exclude(run=run).count()
        print(f"  lost: {len(set(ids) - done)} not done {not_done}, "
              f"{len(set(ids) - reached_sink)} without a sink decision, "
              f"{elsewhere} in another run")
    assert stuck is None, stuck
    assert not posts.errors, f"{len(posts.errors)} failed requests, e.g. {posts.errors[:5]}\n{stack.logs()}"
    assert posts.runs == {run.pk}, posts.runs
    assert run.status == statuses.SUCCEEDED and run.items_total == len(ids) == run.items_done, (
        run.status, run.items_total, len(ids))
    assert lost == 0 and duplicates == 0 and wrong_count == 0, (
        f"{lost} items lost, {duplicates} duplicates, {wrong_count} items without exactly one decision per node")
    assert decisions == len(NODES) * len(ids)
    assert not ws_errors, f"{len(ws_errors)} sockets failed, e.g. {ws_errors[:5]}\n{stack.logs()}"
    assert not regressions, f"{len(regressions)} counts went back, e.g. {regressions[:5]}"
    assert not unsettled, (
        f"{len(unsettled)} sockets ended on other counts than the database {final_status} {final_stats}: "
        f"{unsettled[:3]}")
    assert never_seen == 0 and delays, (never_seen, len(delays))
