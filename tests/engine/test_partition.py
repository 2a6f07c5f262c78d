"""A network partition, for real: a worker in a network namespace of its own reaches PostgreSQL only
over a veth pair (through a TCP relay in the host's namespace, since PostgreSQL listens on loopback),
with a disk of its own (ARTIFACTS_DIR, VAR_DIR), so the model it runs, trained after it started, can
only come from the database's artifact store. Its link is cut while it holds shards; the other worker
takes them over and finishes the run; when the link comes back the cut worker's late commits meet the
fence and write nothing. 0 items lost, 0 decisions duplicated.

Needs root and iproute2 (`ip netns`), as CI's machine has; PostgreSQL only (SQLite is one machine)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.builders import edge, node
from tests.engine.helpers import make_runnable_workflow, tickets
from tests.engine.test_worker import NODES, ROOT, Workers, assert_complete, wait_for, write_chaos_figures
from tests.engine.test_worker import workers as workers  # the fixture, found by its name
from workflows.engine import launch
from workflows.models import Decision, Shard

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def can_make_namespaces() -> str:
    """Why this machine cannot run the test, or '' when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "iproute2 ('ip') is not installed"
    return ""


class Relay:
    """A TCP relay from an address on the host's end of the veth pair to PostgreSQL's address: bytes
    in both directions, one pair of threads per connection. It does nothing when the link is cut; the
    kernel drops the packets, as a switch that failed would."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(listen)
        self.address = self.server.getsockname()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        # shutdown first: close() alone does not wake a thread blocked in recv(), and the
        # connection to PostgreSQL would stay open.
        for s in [self.server, *self.sockets]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture
def partitioned_host():
    """A namespace with one veth link to the host: yields (namespace, host side, the host's address)."""
    reason = can_make_namespaces()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI runs the partition test: {reason}")
    if reason:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}{random.randrange(100)}"
    netns, host_if, ns_if = f"cfpart{tag}", f"cfh{tag}", f"cfw{tag}"
    subnet = random.randrange(1, 250)
    host_ip, ns_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
    ip("netns", "add", netns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", netns)
        ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("netns", "exec", netns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        ip("netns", "exec", netns, "ip", "link", "set", ns_if, "up")
        ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        yield netns, host_if, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def learned_classifier() -> str:
    """Trained here, on the web host, after the partitioned worker started: a real TF-IDF + logistic
    regression exported to ONNX, kept in the artifact store, in production. Its reference."""
    from tests.governance.conftest import keyword_classifier
    from workflows.models.registry import register_version, set_initial_alias

    meta = keyword_classifier({"refund": "billing", "charged": "billing", "vat": "account", "saluto": "other"},
                              "partition-learned")
    version, _ = register_version(model_name="partition-learned", kind="classifier", source="trained",
                                  runtime="tfidf", meta=meta)
    set_initial_alias(version, "production")
    return version


def graph() -> dict:
    nodes = [node("src", "source.upload", fields=["text", "lang"]),
             node("cls", "classify", model="partition-learned@production"),
             node("ext", "extract", patterns=["email", "iban", "amount"], entities=[]),
             node("out", "sink.table")]
    return {"nodes": nodes, "edges": [edge("src", "cls"), edge("cls", "ext"), edge("ext", "out")]}


def wait(condition, timeout: float, what: str, logs) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s\n{logs()}")
        time.sleep(0.1)


def test_a_partitioned_worker_is_taken_over_and_fenced_and_nothing_is_lost_or_doubled(
        personas, workers, partitioned_host, tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("a partition between machines needs PostgreSQL (SQLite is one machine's file)")
    netns, host_if, host_ip = partitioned_host
    db = connection.settings_dict
    relay = Relay((host_ip, 0), (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    settings.ARTIFACTS_DIR = tmp_path / "web-host"
    try:
        own = {name: tmp_path / name for name in ("cut-artifacts", "cut-var", "other-artifacts", "other-var")}
        for folder in own.values():
            folder.mkdir()
        # The cut worker: its own namespace, its own disk, the database only through the veth link.
        cut = workers(ENGINE_HANDLER_MODULES="tests.engine.slow_handlers", SLOW_EXTRACT_MS="10",
                      ARTIFACTS_DIR=str(own["cut-artifacts"]), FACTORY_VAR_DIR=str(own["cut-var"]), LOG_LEVEL="INFO")
        cut.env["DATABASE_URL"] = f"postgres://{db['USER']}@{host_ip}:{relay.address[1]}/{db['NAME']}"
        cut.env.pop("REDIS_URL", None)
        proc, cut_log = start_in(netns, cut)
        version = learned_classifier()  # after the worker started: it has never seen this model
        workflow = make_runnable_workflow(personas["designer"], graph(), name="Partition")
        started = time.monotonic()
        run = launch.create_run(workflow, user=personas["operator"], items=tickets(1000))
        name = f"{socket.gethostname()}:{proc.pid}"

        def committed() -> bool:
            run.refresh_from_db()
            return run.items_done > 0 and Shard.objects.filter(run=run, worker=name, status=Shard.RUNNING).exists()

        wait(committed, 90, "the partitioned worker committing a batch", cut_log.read_text)
        other = workers(ENGINE_HANDLER_MODULES="tests.engine.slow_handlers", SLOW_EXTRACT_MS="10",
                        ARTIFACTS_DIR=str(own["other-artifacts"]), FACTORY_VAR_DIR=str(own["other-var"]))
        other.start("other")
        held: dict[int, int] = {}
        for _ in range(5):
            wait(committed, 30, "the partitioned worker holding a shard", cut_log.read_text)
            ip("link", "set", host_if, "down")  # the cut: packets dropped both ways, no connection closed
            cut_at = time.monotonic()
            time.sleep(0.3)  # a commit already on its way lands or not; after this, nothing of it can
            held = dict(Shard.objects.filter(run=run, worker=name, status=Shard.RUNNING).values_list("id", "attempt"))
            if held:
                break
            ip("link", "set", host_if, "up")  # cut between two shards: nothing to take over, cut again
        assert held, "the cut never caught the worker holding a shard"

        run = wait_for(run, other, timeout=120)
        decisions = Decision.objects.filter(run=run).count()
        took_over = {pk: Shard.objects.get(pk=pk) for pk in held}
        assert all(s.attempt > held[pk] and s.status == Shard.DONE and s.worker != name
                   for pk, s in took_over.items()), {pk: (s.attempt, s.status, s.worker) for pk, s in took_over.items()}
        assert proc.poll() is None, "the cut worker is still running, unaware"

        ip("link", "set", host_if, "up")  # the link comes back: the cut worker's writes arrive late
        wait(lambda: "is no longer current" in cut_log.read_text(), 120,
             "the cut worker's late commit meeting the fence", other.logs)
        time.sleep(1.0)
        cut_seconds = time.monotonic() - cut_at
        write_chaos_figures("partition", run, 1000, started, cut_seconds=round(cut_seconds, 1),
                            shards_taken_over=len(held))
        assert_complete(run, 1000)
        assert Decision.objects.filter(run=run).count() == decisions == 1000 * NODES  # the late writes wrote nothing
        learned = Decision.objects.filter(run=run, node="cls", model_ref=version.ref)
        assert learned.count() == 1000
        assert list(own["cut-artifacts"].rglob(f"{version.sha256}*")), "the cut worker ran its copy from the store"
        print(f"partition: cut for {cut_seconds:.1f} s, {len(held)} shard(s) taken over")
    finally:
        relay.close()


def start_in(netns: str, pool: Workers) -> tuple[subprocess.Popen, Path]:
    """`ip netns exec` execs the worker in place: its pid is the worker's (the shards' worker name)."""
    path = pool.tmp_path / "cut.log"
    log = open(path, "w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*",
         "--no-startup-delay", "--worker-id", "cut", "-v", "1"],
        cwd=ROOT, env=pool.env, stdout=log, stderr=subprocess.STDOUT)
    pool.procs.append(proc)
    return proc, path


def test_a_worker_s_transaction_left_idle_is_ended_by_postgresql(transactional_db, workers):
    """A worker cut off mid-transaction (its COMMIT never arrives) must not hold its row locks for
    ever: the shard it held could not be taken over. PostgreSQL ends a worker's transaction left idle
    past WORKER_IDLE_TRANSACTION_SECONDS; the worker itself never waits inside one."""
    if connection.vendor != "postgresql":
        pytest.skip("idle_in_transaction_session_timeout is PostgreSQL's")
    from tests.builders import make_user, make_workflow
    from tests.engine.test_model_memory import PROBE, probe, probe_graph

    user = make_user("op", "designer", "operator")
    pool = workers(ENGINE_HANDLER_MODULES=PROBE, WORKER_IDLE_TRANSACTION_SECONDS="45")
    pool.start()
    assert probe(make_workflow(user, probe_graph(), name="Probe"), user, pool)["idle_in_transaction"] == "45s"
