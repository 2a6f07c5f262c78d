"""The real three-station line against a bare ONNX Runtime loop over the same runtimes, on short
tickets and on news articles, measured in one run on this machine.

The line: upload → classify (the packaged news-topics head on MiniLM int8) → extract (patterns only)
→ summarise (extractive, MiniLM int8) → table. The product is started as `make run` starts it
(`manage.py serve --workers 1`: daphne + one `run_worker`, with their defaults) on a throwaway
database (PostgreSQL when DATABASE_URL is set, else a SQLite file; Redis when REDIS_URL is set) and
driven through its API with a token: the documents are uploaded as a JSONL file, the run is polled
until its final status (the time ends at the run's `finished_at`), then its results are exported and
checked (read-back time reported apart). The bare loop is a separate plain Python process (no Django)
running the same runtimes, built from the same registry metadata, over the same documents in
micro-batches of ENGINE_BATCH_SIZE: classify, patterns, summarise.

Each repetition measures bare and product back to back per data set (the order alternates); the
ratio of a pair is bare seconds / product seconds (1.0 = the product adds nothing), and the figure is
the median over the pairs. Self-sizing: as many documents as the bare loop needs to last
--min-seconds. Besides the ratios:
- model calls inside the worker vs the plain loop (the guard for sessions.py's thread settings): each
  station's summed call time in the worker (NodeStats.latency_sum_ms, what the executor times around
  `process`) over the bare loop's time for the same station on the same documents (1.0 = as fast as a
  plain loop), and the same for CPU seconds (equal CPU with more wall time = waiting, not working);
- the run's time outside every node's calls (upload, intake, pickup, shard starts, ledger commits):
  what the product adds that is not model work;
- pickup: bench/pickup.py's measure_pickup() when it is there, else the runs' started_at − created_at;
- RSS: the worker's peak (VmHWM) and at rest before any run, the bare process's peak.
- truncation (--truncation): BBC held-out macro-F1 of the packaged head and docs/s on articles with
  the embedder cut at 128 and at 256 tokens.
Ends with one line:
tickets_vs_bare=… articles_vs_bare=… pickup_p50_ms=… worker_peak_rss_mb=… bare_rss_mb=…

    .venv/bin/python bench/line.py [--reps 5] [--min-seconds 12] [--poll-seconds 2] [--truncation]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ARTIFACTS = Path(os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
BATCH = int(os.environ.get("ENGINE_BATCH_SIZE", "32"))
PATTERNS = ["email", "phone", "iban", "vat", "amount", "date"]
SENTENCES = 2
PASSWORD = "bench-line-" + "p" * 20
# How often the client asks for the run's status (--poll-seconds). Every 0.2 s, the requests (daphne,
# PostgreSQL, this process) ran beside the model calls and took turns on the two cores from ONNX Runtime's
# two threads: the calls measured 1.06-1.07x the bare loop's, with the same CPU seconds; every 2 s, 0.98-0.99x.
# A person watches a run through its socket, not by polling; the end is the run's finished_at either way.
POLL_SECONDS = 2.0


# --- the documents (the same in both processes) ------------------------------------------------


def documents(kind: str, count: int) -> list[str]:
    """`tickets`: single sentences of BBC articles, 100–300 characters (median ~28 word pieces);
    `articles`: whole BBC articles. Repeated in order when more are asked for than exist."""
    from workflows.runtimes.corpus import load_bbc
    from workflows.runtimes.summarise import split_sentences

    texts, _ = load_bbc()
    if kind == "tickets":
        pool = [t[s:e] for t in texts for s, e in split_sentences(t) if 100 <= e - s <= 300]
    else:
        pool = texts
    return [pool[i % len(pool)] for i in range(count)]


def status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the bare loop, in a process of its own ----------------------------------------------------


def bare_child(metas_file: str) -> None:
    """Serve the parent's requests on stdin: {"kind", "count"} → the loop's timings on stdout."""
    from workflows.runtimes.classify import HeadClassifier
    from workflows.runtimes.patterns import find_patterns
    from workflows.runtimes.summarise import Summariser

    metas = json.loads(Path(metas_file).read_text())
    classifier = HeadClassifier(metas["head"], metas["embedder"])
    summariser = Summariser(metas["summariser"], sentences=SENTENCES)

    def patterns(batch: list[dict[str, Any]]) -> None:
        for item in batch:
            found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PATTERNS}
            for span in find_patterns(item["text"], PATTERNS):
                found.setdefault(span.kind, []).append(span.to_json())

    cache: dict[tuple[str, int], list[str]] = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = (request["kind"], request["count"])
        if key not in cache:
            cache.clear()
            cache[key] = documents(*key)
        docs = cache[key]
        stations = {"cls": 0.0, "ext": 0.0, "sum": 0.0}
        cpu = {"cls": 0.0, "ext": 0.0, "sum": 0.0}
        started = time.perf_counter()
        for start in range(0, len(docs), BATCH):
            batch = [{"text": t} for t in docs[start : start + BATCH]]
            for station, call in (("cls", classifier.run), ("ext", patterns), ("sum", summariser.run)):
                t0, c0 = time.perf_counter(), time.process_time()
                call(batch)
                stations[station] += time.perf_counter() - t0
                cpu[station] += time.process_time() - c0
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "stations": stations, "cpu": cpu,
                          "peak_kb": status_kb("self", "VmHWM")}), flush=True)


class Bare:
    def __init__(self, metas: dict[str, Any], folder: Path):
        file = folder / "bare-metas.json"
        file.write_text(json.dumps(metas))
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.proc = subprocess.Popen([sys.executable, __file__, "--bare-child", str(file)], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, kind: str, count: int) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"kind": kind, "count": count}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the bare loop's process died")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- the product, through its API ------------------------------------------------------------


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                raw: bool = False) -> Any:
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=600) as response:
            data = response.read()
        return data if raw else json.loads(data)

    def login(self, username: str) -> None:
        body = json.dumps({"username": username, "password": PASSWORD}).encode()
        self.token = self.request("POST", "/api/auth/token/", body)["token"]

    def upload(self, workflow_id: int, docs: list[str]) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        jsonl = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs).encode()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"docs.jsonl\"\r\n"
                f"Content-Type: application/jsonl\r\n\r\n").encode() + jsonl + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", f"/api/workflows/{workflow_id}/runs/", body,
                            f"multipart/form-data; boundary={boundary}")


def parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def product_run(api: Api, workflow_id: int, docs: list[str], poll: float = POLL_SECONDS) -> dict[str, Any]:
    """Upload → final status (the run's finished_at) → results exported and checked."""
    started = time.time()
    run = api.upload(workflow_id, docs)
    while run["status"] in ("queued", "running"):
        time.sleep(poll)  # the end is the server's timestamp: a slower poll only waits longer
        run = api.request("GET", f"/api/runs/{run['id']}/")
    if run["status"] != "succeeded" or run["items_done"] != len(docs):
        raise RuntimeError(f"run {run['id']} ended {run['status']} with {run['items_done']}/{len(docs)} done: "
                           f"{run.get('error')} {run.get('dead_letters', [])[:3]}")
    seconds = parse_time(run["finished_at"]) - started
    read = time.perf_counter()
    lines = api.request("GET", f"/api/runs/{run['id']}/export/?as=jsonl", raw=True).decode().splitlines()
    readback = time.perf_counter() - read
    rows = [json.loads(line) for line in lines if line.strip()]
    if len(rows) != len(docs) or not all(_has_outputs(row) for row in rows):
        raise RuntimeError(f"run {run['id']}: {len(rows)} result rows for {len(docs)} documents, "
                           f"first: {rows[:1]}")
    pickup = parse_time(run["started_at"]) - parse_time(run["created_at"])
    # Upload and intake: from the request's start to the run row (the same machine's clock).
    intake = parse_time(run["created_at"]) - started
    return {"id": run["id"], "seconds": seconds, "readback": readback, "pickup": pickup, "intake": intake}


def _has_outputs(row: dict[str, Any]) -> bool:
    flat = json.dumps(row)
    return '"summary"' in flat and '"label"' in flat


def station_seconds(run_id: int) -> tuple[dict[str, float], dict[str, float]]:
    """Each station's summed call time in the worker, wall and CPU (the whole process's, as the
    executor measures it around `process`)."""
    from workflows.models import NodeStats

    rows = NodeStats.objects.filter(run_id=run_id)
    return {s.node: s.latency_sum_ms / 1000 for s in rows}, {s.node: s.cpu_seconds for s in rows}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


class Product:
    """`manage.py serve --workers 1` on the bench's database, as `make run` starts it."""

    def __init__(self, folder: Path, db_env: dict[str, str], drop: tuple[str, ...] = ()):
        self.port = free_port()
        dropped = {"DATABASE_URL", "SQLITE_PATH", "SQLITE_TEST_PATH", *drop}
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(db_env)
        # The production profile over plain http on localhost (no TLS proxy in front of it).
        env.update(DEBUG="0", SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0",
                   FACTORY_VAR_DIR=str(folder / "var"), LOG_LEVEL="WARNING", CHANNEL_PREFIX=f"bench{os.getpid()}")
        self.log = (folder / f"serve-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(self.port), "--workers", "1",
                                      "--llm-port", "0"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.folder = folder
        deadline = time.monotonic() + 180
        while socket.socket().connect_ex(("127.0.0.1", self.port)) != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{Path(self.log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        self.worker_pid = next(pid for pid, cmd in children(self.proc.pid) if "run_worker" in cmd)
        self.web_pid = next(pid for pid, cmd in children(self.proc.pid) if "daphne" in cmd)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- set-up ------------------------------------------------------------------------------------


def line_graph() -> dict[str, Any]:
    from tests.builders import edge, node

    nodes = [node("src", "source.upload", fields=["text"]),
             node("cls", "classify", model="news-topics@production"),
             node("ext", "extract", patterns=PATTERNS, entities=[]),
             node("sum", "summarise", method="extractive", model="minilm@production", sentences=SENTENCES),
             node("out", "sink.table")]
    ids = [n["id"] for n in nodes]
    return {"nodes": nodes, "edges": [edge(a, b) for a, b in itertools.pairwise(ids)]}


def register_packaged() -> dict[str, Any]:
    """The packaged models registered as `make setup` registers them; the metadata the worker will load."""
    from workflows.management.commands.setup_models import register_metas
    from workflows.models import ModelVersion
    from workflows.runtimes.build import build_all

    register_metas(build_all(ARTIFACTS, log=lambda m: print(f"[build] {m}", flush=True)), log=lambda m: None)
    head = ModelVersion.objects.get(model__name="news-topics", aliases__name="production")
    embedder = ModelVersion.objects.get(sha256=head.runtime_meta()["params"]["embedder_sha256"])
    summariser = ModelVersion.objects.get(model__name="minilm", aliases__name="production")
    return {"head": head.runtime_meta(), "embedder": embedder.runtime_meta(), "summariser": summariser.runtime_meta()}


def db_env_of(pg: bool) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    if pg:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return {"DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    return {"SQLITE_PATH": str(db["NAME"])}


def size_for(bare: Bare, kind: str, min_seconds: float, limit: int) -> int:
    """Documents enough for the bare loop to last `min_seconds` (in whole micro-batches)."""
    probe = BATCH * 4
    rate = probe / bare.run(kind, probe)["seconds"]
    return max(BATCH * 4, min(limit, int(rate * min_seconds) // BATCH * BATCH + BATCH))


# --- the truncation trade-off --------------------------------------------------------------------


def truncation(metas: dict[str, Any], reps: int) -> dict[int, dict[str, float]]:
    """BBC held-out macro-F1 of the packaged head, and articles/s of its classify call, with the
    embedder cut at 128 and at 256 tokens (interleaved repetitions, median rate)."""
    import copy

    from sklearn.metrics import f1_score

    from workflows.runtimes.classify import HeadClassifier
    from workflows.runtimes.corpus import bbc_split

    _, _, test_x, test_y = bbc_split()
    runtimes = {}
    for limit in (128, 256):
        embedder = copy.deepcopy(metas["embedder"])
        embedder["params"]["max_tokens"] = limit
        runtimes[limit] = HeadClassifier(metas["head"], embedder)
    figures: dict[int, dict[str, float]] = {}
    for limit, runtime in runtimes.items():
        predicted = [out["label"] for out in runtime.classify(test_x)]
        figures[limit] = {"macro_f1": float(f1_score(test_y, predicted, average="macro")), "rates": []}
    sample = test_x[:96]
    for _ in range(reps):
        for limit, runtime in runtimes.items():
            started = time.perf_counter()
            runtime.classify(sample)
            figures[limit]["rates"].append(len(sample) / (time.perf_counter() - started))
    for figure in figures.values():
        figure["docs_per_s"] = statistics.median(figure.pop("rates"))
    return figures


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    # At 6 s a pair moved by ±10 % with this shared machine's neighbours (tickets pairs 0.86-1.09 in one
    # run, medians 0.94 and 1.00 an hour apart); at 12 s the same machine gave pairs 0.99-1.03.
    parser.add_argument("--min-seconds", type=float, default=12.0, help="the bare loop's time per data set and rep")
    parser.add_argument("--max-docs", type=int, default=4000)
    parser.add_argument("--truncation", action="store_true", help="also measure 128 vs 256 tokens on BBC")
    parser.add_argument("--pickup-count", type=int, default=20)
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS,
                        help="how often the client reads the run's status while it runs")
    parser.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(args.bare_child)
        return

    tmp = Path(tempfile.mkdtemp(prefix="cf-line-bench-"))
    pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    os.environ.update({"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60, "LOG_LEVEL": "WARNING"})
    if not pg:
        os.environ["SQLITE_TEST_PATH"] = str(tmp / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if pg:
        settings.DATABASES["default"]["TEST"]["NAME"] = "factory_line_bench"
    old = setup_databases(verbosity=0, interactive=False)
    product = bare = None
    try:
        from tests.builders import make_user, make_workflow

        metas = register_packaged()
        user = make_user("bench-line", "designer", "operator")
        user.set_password(PASSWORD)
        user.save()
        workflow = make_workflow(user, line_graph(), name="Three stations")
        assert workflow.latest.is_runnable, workflow.latest.problems
        connection.close()  # the product's processes own the database from here on

        bare = Bare(metas, tmp)
        product = Product(tmp, db_env_of(pg))
        time.sleep(3)  # the worker is up and idle: its resting size
        idle_kb = status_kb(product.worker_pid, "VmRSS")
        api = Api(product.port)
        api.login(user.username)
        print(f"{connection.vendor}{' + Redis' if os.environ.get('REDIS_URL') else ''}; load {load_average()}; "
              f"idle worker {idle_kb // 1024} MB", flush=True)

        sizes = {kind: size_for(bare, kind, args.min_seconds, args.max_docs) for kind in ("tickets", "articles")}
        docs = {kind: documents(kind, n) for kind, n in sizes.items()}
        for kind in sizes:  # warm-up: the worker loads its models, the bare process has them
            product_run(api, workflow.pk, docs[kind][: BATCH * 2])
            bare.run(kind, BATCH * 2)

        pairs: dict[str, list[float]] = {kind: [] for kind in sizes}
        calls: dict[str, dict[str, list[float]]] = {kind: {"cls": [], "sum": []} for kind in sizes}
        cpus: dict[str, dict[str, list[float]]] = {kind: {"cls": [], "sum": []} for kind in sizes}
        pickups: list[float] = []
        readbacks: dict[str, list[float]] = {kind: [] for kind in sizes}
        # A run's time outside every node's calls: upload, intake, pickup, shard starts, ledger commits.
        outside: dict[str, list[float]] = {kind: [] for kind in sizes}
        loads: list[str] = []
        for rep in range(args.reps):
            for kind in sizes:
                order = ("bare", "product") if rep % 2 == 0 else ("product", "bare")
                got: dict[str, Any] = {}
                for which in order:
                    if which == "bare":
                        got["bare"] = bare.run(kind, sizes[kind])
                    else:
                        got["product"] = product_run(api, workflow.pk, docs[kind], args.poll_seconds)
                b, p = got["bare"], got["product"]
                pairs[kind].append(b["seconds"] / p["seconds"])
                inside, inside_cpu = station_seconds(p["id"])
                for station in ("cls", "sum"):
                    calls[kind][station].append(inside[station] / b["stations"][station])
                    cpus[kind][station].append(inside_cpu[station] / b["cpu"][station])
                pickups.append(p["pickup"] * 1000)
                outside[kind].append(p["seconds"] - sum(inside.values()))
                readbacks[kind].append(p["readback"])
                loads.append(load_average())
                print(f"  rep {rep + 1} {kind:8s} {sizes[kind]:5d} docs: bare {b['seconds']:.2f} s, "
                      f"product {p['seconds']:.2f} s → {pairs[kind][-1]:.3f}; calls in worker / bare: "
                      f"cls {calls[kind]['cls'][-1]:.3f} sum {calls[kind]['sum'][-1]:.3f}; "
                      f"outside the nodes {outside[kind][-1]:.2f} s (upload and intake {p['intake']:.2f} s); "
                      f"pickup {p['pickup'] * 1000:.0f} ms; "
                      f"load {loads[-1]}", flush=True)

        worker_peak = status_kb(product.worker_pid, "VmHWM") // 1024
        web_peak = status_kb(product.web_pid, "VmHWM") // 1024
        bare_peak = bare.run("tickets", BATCH)["peak_kb"] // 1024
        product.stop()
        product = None
        bare.stop()
        bare = None

        pickup_p50 = statistics.median(pickups)
        pickup_note = "from the runs' started_at − created_at"
        try:
            from bench.pickup import measure_pickup
        except ImportError:
            measure_pickup = None
        if measure_pickup is not None and args.pickup_count:
            connection.connect()
            pickup_p50 = measure_pickup(args.pickup_count, idle_seconds=0, folder=tmp).p50_ms
            pickup_note = f"bench/pickup.py, {args.pickup_count} runs on an idle worker"

        ratio = {kind: statistics.median(values) for kind, values in pairs.items()}
        print(f"line vs bare (median of {args.reps} pairs; loads during the pairs: {'; '.join(loads)}):")
        for kind in sizes:
            med = {name: {station: statistics.median(v) for station, v in per.items()}
                   for name, per in (("wall", calls[kind]), ("cpu", cpus[kind]))}
            print(f"  {kind:8s} {sizes[kind]} docs: pairs {' '.join(f'{r:.3f}' for r in sorted(pairs[kind]))}; "
                  f"model calls in the worker / bare loop: classify "
                  f"{med['wall']['cls']:.3f}, summarise {med['wall']['sum']:.3f} "
                  f"(CPU seconds: {med['cpu']['cls']:.3f}, {med['cpu']['sum']:.3f}); "
                  f"run time outside the nodes {statistics.median(outside[kind]):.2f} s; "
                  f"results read back in {statistics.median(readbacks[kind]):.2f} s")
        print(f"  pickup p50 {pickup_p50:.0f} ms ({pickup_note}); "
              f"the runs' own pickup p50 {statistics.median(pickups):.0f} ms")
        print(f"  RSS: worker idle {idle_kb // 1024} MB, worker peak {worker_peak} MB, web peak {web_peak} MB, "
              f"bare loop peak {bare_peak} MB")
        if args.truncation:
            print(f"truncation (the packaged head on BBC held-out articles; load {load_average()}):")
            for limit, figure in truncation(metas, args.reps).items():
                print(f"  max_tokens={limit}: macro-F1 {figure['macro_f1']:.4f}, classify {figure['docs_per_s']:.1f} "
                      "articles/s")
    finally:
        if product is not None:
            product.stop()
        if bare is not None:
            bare.proc.kill()
        connection.close()
        teardown_databases(old, verbosity=0)
    print(f"tickets_vs_bare={ratio['tickets']:.3f} articles_vs_bare={ratio['articles']:.3f} "
          f"pickup_p50_ms={pickup_p50:.0f} worker_peak_rss_mb={worker_peak} bare_rss_mb={bare_peak}")


if __name__ == "__main__":
    main()
