"""Live metrics under load: the delay from a NodeStats commit to the sockets, and what 50 watching
sockets cost the run.

A throwaway database (PostgreSQL when DATABASE_URL is set, else a SQLite file), a daphne process,
one `run_worker` process, and SOCKETS websocket clients (autobahn) watching the run page socket.
With REDIS_URL the worker pushes through channels-redis; without it the consumers poll.

(a) delay: the worker notes the time of each batch commit (bench/live_probe.py); each client notes
    when the stats of the `ext` node with batches ≥ k first arrive. Delay of commit k on a client =
    that arrival − commit time (a commit folded into a later update counts in full). p95 over every
    commit and client.
(b) throughput: the same run watched by SOCKETS clients and by none (run.finished_at − started_at),
    interleaved, REPS each; ratio = throughput with sockets / throughput without (1.0 = free).

The run sizes itself: a sizing run of --items grows (×, by the rate it measured) until one run lasts
at least --min-seconds, so neither figure is a few batches' worth. Each measured run is created with
the worker paused (SIGSTOP): the sockets connect and each confirms it received the run's snapshot,
then the worker resumes (SIGCONT) and takes the run's first shard (that sets started_at). So every
commit of a watched run happens after all sockets subscribed and counts, and the unwatched runs are
made the same way. The load average is printed beside each run.
Ends with one line: p95_ms=… throughput_ratio=…

    .venv/bin/python bench/live.py [--items 6000] [--min-seconds 10] [--sockets 50] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
READERS: set[asyncio.Future] = set()
STATS = re.compile(r'data-node="ext" data-run="(\d+)" data-t="[^"]*" data-rate="[^"]*" data-batches="(\d+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def watch(port: int, path: str, cookie: str, on_text) -> asyncio.StreamWriter:
    """A minimal websocket client (RFC 6455; enough for daphne's unmasked, unfragmented or
    fragmented text frames). autobahn's asyncio client cannot load next to daphne's Twisted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                  f"Cookie: {cookie}\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head[:80]!r}")

    async def read() -> None:
        parts: list[bytes] = []
        while True:
            b1, b2 = await reader.readexactly(2)
            length = b2 & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)
            opcode = b1 & 0x0F
            if opcode == 8:
                return
            if opcode in (0, 1):
                parts.append(payload)
                if b1 & 0x80:
                    on_text(b"".join(parts).decode(), time.time())
                    parts = []

    async def read_quietly() -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read()

    READERS.add(asyncio.ensure_future(read_quietly()))
    return writer


class Clients:
    """SOCKETS websocket clients on an event loop thread of their own; `arrivals[client][run]`
    lists (time, batches) of every ext-stats fragment received."""

    def __init__(self, port: int, cookie: str, count: int):
        self.port, self.cookie, self.count = port, cookie, count
        self.arrivals: list[dict[int, list[tuple[float, int]]]] = [defaultdict(list) for _ in range(count)]
        self.loop = asyncio.new_event_loop()
        self.writers: list[asyncio.StreamWriter] = []
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def connect(self, run_id: int) -> None:
        asyncio.run_coroutine_threadsafe(self._connect_all(run_id), self.loop).result(60)

    async def _connect_all(self, run_id: int) -> None:
        for slot in range(self.count):
            def on_text(text: str, at: float, slot: int = slot) -> None:
                for run, batches in STATS.findall(text):
                    self.arrivals[slot][int(run)].append((at, int(batches)))

            self.writers.append(await watch(self.port, f"/ws/runs/{run_id}/", self.cookie, on_text))

    def close(self) -> None:
        for w in self.writers:
            self.loop.call_soon_threadsafe(w.close)
        self.writers = []


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(check, timeout: float = 30, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise RuntimeError("timed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6000, help="the sizing run's items (grown to --min-seconds)")
    parser.add_argument("--min-seconds", type=float, default=10.0, help="a measured run lasts at least this long")
    parser.add_argument("--max-items", type=int, default=400_000)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cf-live-bench-"))
    probe_file = tmp / "commits.txt"
    pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    secret = "bench-" + "x" * 60
    base_env = {"ENGINE_SHARD_SIZE": "256", "ENGINE_BATCH_SIZE": "32", "ENGINE_MONITOR_SECONDS": "1",
                "SECRET_KEY": secret, "LOG_LEVEL": "WARNING", "CHANNEL_PREFIX": f"bench{os.getpid()}"}
    if not pg:
        base_env["SQLITE_TEST_PATH"] = str(tmp / "bench.sqlite3")
    os.environ.update({**base_env, "DEBUG": "0"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if pg:
        settings.DATABASES["default"]["TEST"]["NAME"] = "factory_live_bench"
    old = setup_databases(verbosity=0, interactive=False)
    procs: list[subprocess.Popen] = []
    clients = None
    try:
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        from tests.builders import make_user
        from tests.engine.helpers import make_runnable_workflow, tickets
        from workflows.engine import launch
        from workflows.models import Run

        user = make_user("bench", "designer", "operator")
        workflow = make_runnable_workflow(user)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()

        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH"}}
        db = connection.settings_dict
        if pg:
            env["DATABASE_URL"] = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
                                   f"/{db['NAME']}")
        else:
            env["SQLITE_PATH"] = str(db["NAME"])
        env.update(ENGINE_HANDLER_MODULES="workflows.engine.nodes.models,bench.live_probe",
                   LIVE_PROBE_FILE=str(probe_file))
        port = free_port()
        web_env = {**env, "DEBUG": "1"}  # plain http on localhost (DEBUG=0 redirects to https)
        procs.append(subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                       "factory.asgi:application"],
                                      cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / "daphne.log", "w")))
        worker = subprocess.Popen([sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*",
                                   "-v", "0"], cwd=ROOT, env=env)  # serve's settings: woken by NOTIFY
        procs.append(worker)
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30)
        mode = "push (channels-redis)" if os.environ.get("REDIS_URL") else "poll (in-memory layer)"

        def finished(run_id: int) -> bool:
            return Run.objects.filter(pk=run_id, status__in=("succeeded", "failed", "cancelled")).exists()

        def run_seconds(run_id: int) -> float:
            run = Run.objects.get(pk=run_id)
            if run.status != "succeeded":
                raise RuntimeError(f"run {run_id} ended {run.status}: see {tmp}/daphne.log and the worker's output")
            return (run.finished_at - run.started_at).total_seconds()

        # Warm-up: the worker imports and caches its plan.
        warm = launch.create_run(workflow, user=user, items=tickets(64))
        wait_until(lambda: finished(warm.pk), 60)

        # Sizing: grow the run until it lasts min_seconds (the rate of a short run understates a long
        # one's, so aim a quarter above and measure again).
        items_count = args.items
        while True:
            run = launch.create_run(workflow, user=user, items=tickets(items_count))
            wait_until(lambda run=run: finished(run.pk), 600)
            took = run_seconds(run.pk)
            print(f"  sizing: {items_count} items in {took:.2f} s (load {os.getloadavg()[0]:.1f})")
            if took >= args.min_seconds or items_count >= args.max_items:
                break
            items_count = min(args.max_items, math.ceil(items_count * max(1.25, 1.25 * args.min_seconds / took)))
        items = tickets(items_count)

        clients = Clients(port, f"sessionid={session.session_key}", args.sockets)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        subscribed: dict[int, float] = {}
        pids = {"worker": worker.pid, "daphne": procs[0].pid, "bench": os.getpid()}
        cpu: dict[bool, dict[str, list[float]]] = {True: defaultdict(list), False: defaultdict(list)}
        for _rep in range(args.reps):
            for watch in (False, True):
                # The worker waits while the run is created and (watched) every socket takes its snapshot.
                os.kill(worker.pid, signal.SIGSTOP)
                try:
                    run = launch.create_run(workflow, user=user, items=items)
                    if watch:
                        clients.connect(run.pk)
                        wait_until(lambda run=run: all(a.get(run.pk) for a in clients.arrivals), 30, 0.01)
                        subscribed[run.pk] = time.time()
                finally:
                    os.kill(worker.pid, signal.SIGCONT)
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                wait_until(lambda run=run: finished(run.pk), 600)
                for name, pid in pids.items():
                    cpu[watch][name].append(cpu_seconds(pid) - before[name])
                seconds[watch].append(run_seconds(run.pk))
                print(f"  {'with' if watch else 'without'} sockets: {seconds[watch][-1]:.2f} s "
                      f"(load {os.getloadavg()[0]:.1f})")
                if watch:
                    time.sleep(1.0)  # the last updates
                    clients.close()

        commits: dict[int, list[float]] = defaultdict(list)
        for line in probe_file.read_text().split("\n"):
            if line:
                run_id, at = line.split()
                commits[int(run_id)].append(float(at))
        delays: list[float] = []
        counted = 0
        for run_id, since in subscribed.items():
            for arrivals in clients.arrivals:
                got = sorted(arrivals.get(run_id, []))
                for k, committed in enumerate(commits[run_id], start=1):
                    if committed <= since:  # cannot happen with the worker paused; counted out if it did
                        continue
                    counted += 1
                    first = next((t for t, b in got if b >= k), None)
                    if first is None:
                        raise RuntimeError(f"run {run_id}: commit {k} never reached a client")
                    delays.append(max(0.0, first - committed) * 1000)
        delays.sort()
        if not delays:
            raise RuntimeError(f"no commit happened after the sockets subscribed: {dict(seconds)}")
        p95 = delays[int(0.95 * (len(delays) - 1))]
        without, with_ = statistics.median(seconds[False]), statistics.median(seconds[True])
        ratio = without / with_
        load = "/".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"{connection.vendor}, {mode}: {items_count} items a run (sized to ≥ {args.min_seconds:g} s), "
              f"{args.sockets} sockets, {args.reps} runs each way, load {load}")
        print(f"  delay commit → socket over {len(delays)} (commit, socket) pairs "
              f"({counted // args.sockets} commits after subscribing): p50 {delays[len(delays) // 2]:.0f} ms, "
              f"p95 {p95:.0f} ms, max {delays[-1]:.0f} ms")
        print(f"  run time without sockets {without:.2f} s ({items_count / without:.0f} items/s), "
              f"with {args.sockets} sockets {with_:.2f} s ({items_count / with_:.0f} items/s)")
        for watch in (False, True):
            print(f"  CPU seconds during a run {'with' if watch else 'without'} sockets: "
                  + ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in cpu[watch].items()))
        print(f"p95_ms={p95:.0f} throughput_ratio={ratio:.3f}")
    finally:
        if clients is not None:
            clients.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        connection.close()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
