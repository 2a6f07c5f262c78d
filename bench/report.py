"""Reliability report: the chaos, load and fuzz tests run once, their figures in one table.

Runs pytest subprocesses with CF_RELIABILITY_DIR set to a temporary folder, where the tests write
their figures, on the database and Redis of the environment (DATABASE_URL, REDIS_URL; on PostgreSQL
the test database is PG_TEST_DB, by default test_factory_reliability):
  chaos  tests/engine/test_worker.py: a worker SIGKILLed 10 times during a 1,000-item run, and every
         database connection of the workers killed (pg_terminate_backend) 3 times during another;
         tests/engine/test_partition.py: a worker in its own network namespace cut off mid-run (needs
         root and iproute2), its shards taken over, its late writes fenced → chaos.json
  patterns tests/runtimes/test_patterns_adversarial.py: inputs built to make the pattern finders
         backtrack, each within a budget → patterns.json (how many were tried)
  load   tests/load: 50 websockets watch a live run while 20 clients post to the intake API
         for CF_LOAD_SECONDS (60) → load.json
  fuzz   tests/fuzz: the API fuzzed from its OpenAPI schema, role by role → fuzz.json
         ("not run" in the table while tests/fuzz is not in the checkout)
Writes docs/reliability.md (the README links it), stamped with the date, the commit (and whether the
working tree differed from it) and the machine: cores, CPU, the PostgreSQL server's version (asked of
the server itself), Redis, Python. Ends with one line of name=value pairs:
  lost=… duplicates=… server_errors=… partition_lost=… pattern_inputs=… schema_violations=… http_errors=… …
Exits non-zero when an item was lost or duplicated, a request got a 5xx, or a test failed.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/report.py \
        [--load-seconds 60] [--only chaos,load]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
STEPS: dict[str, list[str]] = {
    "chaos": ["tests/engine/test_worker.py", "tests/engine/test_partition.py", "-k",
              "sigkill or killed_database_connection or partitioned_worker"],
    "patterns": ["tests/runtimes/test_patterns_adversarial.py"],
    "load": ["tests/load"],
    "fuzz": ["tests/fuzz"],
}
FIGURES = {"chaos": "chaos.json", "patterns": "patterns.json", "load": "load.json", "fuzz": "fuzz.json"}
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|skipped|error|errors|deselected|xfailed|xpassed).*?)\s*=*$")


def masked(url: str) -> str:
    """A database URL without its password, for the report."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":…@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def postgres_version(url: str) -> str:
    """The server's version, e.g. "15.20 (Debian 15.20-0+deb12u1)". The database DATABASE_URL names
    need not exist (the tests run in PG_TEST_DB, created and dropped by pytest-django), so the
    server's own `postgres` and `template1` databases are asked after it."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    names = [conninfo_to_dict(url).get("dbname"), os.environ.get("PG_TEST_DB"), "postgres", "template1"]
    error: Exception | None = None
    for name in dict.fromkeys(n for n in names if n):
        try:
            with psycopg.connect(make_conninfo(url, dbname=name), connect_timeout=5) as conn:
                return conn.execute("SHOW server_version").fetchone()[0]
        except psycopg.OperationalError as exc:
            error = exc
    raise error or RuntimeError("no database name to connect to")


def checkout(out: Path) -> str:
    """The commit measured, and whether the working tree differed from it (the report itself aside)."""
    def git(*args: str) -> str:
        # --no-optional-locks: `git status` must not refresh the index under someone else's feet.
        return subprocess.run(["git", "--no-optional-locks", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True, timeout=60).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = git("status", "--porcelain").splitlines()
    except (OSError, subprocess.SubprocessError):
        return "an unknown commit (git could not say)"
    mine = os.path.relpath(out, ROOT)
    changed = [line for line in changed if not line.rstrip().endswith(mine)]
    return f"commit `{head}`" + (f" with uncommitted changes to {len(changed)} paths" if changed else "")


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cores": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(), "database": "SQLite",
            "redis": "no Redis (sockets poll)"}
    url = os.environ.get("DATABASE_URL", "")
    try:
        if url.startswith("postgres"):
            info["database"] = "PostgreSQL " + postgres_version(url)
        else:
            import sqlite3

            info["database"] = f"SQLite {sqlite3.sqlite_version}"
    except Exception as exc:
        why = (str(exc).strip().splitlines() or [""])[0][:200]
        info["database"] = (f"{'PostgreSQL' if url.startswith('postgres') else 'SQLite'} "
                            f"(version unknown: {type(exc).__name__}{': ' + why if why else ''})")
    if os.environ.get("REDIS_URL"):
        try:
            import redis

            server = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5).info("server")
            info["redis"] = "Redis " + server["redis_version"]
        except Exception as exc:
            info["redis"] = f"Redis (version unknown: {type(exc).__name__})"
    return info


def run_step(name: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    target = STEPS[name][0]
    command = [sys.executable, "-m", "pytest", *STEPS[name], "-q", "-s", "-p", "no:cacheprovider"]
    shown = " ".join(shlex.quote(c) for c in [".venv/bin/python" if c == sys.executable else c for c in command])
    if not (ROOT / target).exists():
        print(f"{name}: not run ({target} is not in this checkout)", flush=True)
        return {"name": name, "command": shown, "result": f"not run: {target} is not in this checkout", "ran": False,
                "ok": True}
    print(f"{name}: {shown}", flush=True)
    log = folder / f"{name}.log"
    started = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    seconds = time.monotonic() - started
    lines = log.read_text(errors="replace").splitlines()
    summary = next((m.group(1) for line in reversed(lines) if (m := SUMMARY.match(line.strip()))), f"exit code {code}")
    summary = re.sub(r" in [\d.]+s.*$", "", summary)
    print(f"{name}: {summary} in {seconds:.0f} s (exit code {code})", flush=True)
    if code != 0:
        print("\n".join(lines[-40:]), flush=True)
    return {"name": name, "command": shown, "result": summary, "seconds": seconds, "ran": True, "ok": code == 0,
            "code": code}


def read(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / FIGURES[name]
    return json.loads(path.read_text()) if path.exists() else None


def add(*values: Any) -> int | None:
    """The sum of the figures that exist (None when none does)."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def fmt(value: Any) -> str:
    if value is None:
        return "na"
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return str(value)


def num(value: Any) -> str:
    """For the table: thousands separated, 'not run' for a missing figure."""
    if value is None:
        return "not run"
    if isinstance(value, int):
        return f"{value:,}"
    return fmt(value)


def totals(chaos: dict | None, load: dict | None, fuzz: dict | None, patterns: dict | None = None) -> dict[str, Any]:
    c, lo, f = chaos or {}, load or {}, fuzz or {}
    partition = c.get("tests", {}).get("partition", {})
    return {
        "lost": add(c.get("items_lost"), lo.get("items_lost")),
        "duplicates": add(c.get("duplicates"), lo.get("duplicates")),
        "server_errors": add(f.get("server_errors"), lo.get("http_5xx")),
        "partition_lost": partition.get("items_lost"),
        "pattern_inputs": (patterns or {}).get("inputs"),
        "schema_violations": f.get("schema_violations"),
        "role_violations": f.get("role_violations"),
        "http_errors": lo.get("http_errors"),
        "ws_errors": lo.get("ws_errors"),
        "intake_p50_ms": lo.get("intake_p50_ms"),
        "intake_p95_ms": lo.get("intake_p95_ms"),
        "push_p50_ms": lo.get("push_p50_ms"),
        "push_p95_ms": lo.get("push_p95_ms"),
        "items_per_s": lo.get("items_per_s"),
        "kills": c.get("kills"),
        "connection_kills": c.get("connection_kills"),
        "fuzz_requests": f.get("requests"),
    }


def markdown(steps: list[dict], chaos: dict | None, load: dict | None, fuzz: dict | None, line: str, info: dict,
             command: str, when: str, commit: str, patterns: dict | None = None) -> str:
    t = totals(chaos, load, fuzz, patterns)
    partition = (chaos or {}).get("tests", {}).get("partition")
    c, lo, f = chaos or {}, load or {}, fuzz or {}
    chaos_from = (f"chaos: {num(c.get('items'))} items through {num(c.get('kills'))} worker SIGKILLs and "
                  f"{num(c.get('connection_kills'))} killed database connections") if chaos else "chaos: not run"
    load_from = (f"load: {num(lo.get('items_posted'))} items posted by {lo.get('posters')} clients in "
                 f"{fmt(lo.get('seconds'))} s" if load else "load: not run")
    # fuzz.json's "roles" counts every identity the fuzzer called as: each role, a user with no role, anonymous.
    fuzz_from = (f"fuzz: {num(f.get('requests'))} requests over {num(f.get('operations'))} operations × "
                 f"{num(f.get('roles'))} identities (every role, a user with no role, anonymous)"
                 if fuzz else "fuzz: not run")
    load_note = (f"load: {lo.get('ws_clients')} sockets, {lo.get('workers', 'na')} workers, {fmt(lo.get('seconds'))} s"
                 if load else "load: not run")

    def took(step: dict) -> str:
        return f"{step['seconds']:.0f} s" if step.get("seconds") else "–"

    def pair(a: Any, b: Any) -> str:
        return "not run" if a is None and b is None else f"{fmt(a)} / {fmt(b)} ms"

    rows = [
        ("items lost", f"**{num(t['lost'])}**", f"{chaos_from}; {load_from}"),
        ("duplicated decisions or item ids", f"**{num(t['duplicates'])}**", f"{chaos_from}; {load_from}"),
        ("items lost across a network partition", f"**{num(t['partition_lost'])}**",
         (f"chaos: a worker in its own network namespace cut off mid-run for {fmt(partition.get('cut_seconds'))} s "
          f"holding {num(partition.get('shards_taken_over'))} shard(s), taken over; its late commits fenced"
          if partition else "chaos: not run (needs root, iproute2 and PostgreSQL)")),
        ("server errors (5xx)", f"**{num(t['server_errors'])}**",
         f"{fuzz_from}; load: {num(lo.get('requests'))} intake requests"),
        ("responses that break the OpenAPI schema", num(t["schema_violations"]), fuzz_from),
        ("adversarial inputs given to the pattern finders, each within its budget", num(t["pattern_inputs"]),
         "patterns: runs of the characters a pattern starts with and never completes, known shapes and generated"
         if patterns else "patterns: not run"),
        ("answers that break the role matrix", num(f.get("role_violations")) if fuzz else "not run", fuzz_from),
        ("refused requests that left something half written", num(f.get("half_written")) if fuzz else "not run",
         fuzz_from),
        ("failed intake requests (any status but 202, or no answer)", num(t["http_errors"]), load_from),
        ("websocket errors and disconnects", num(t["ws_errors"]), load_note),
        ("socket counts that went back", num(lo.get("ws_regressions")),
         f"{load_note}, {num(lo.get('ws_frames'))} frames received"),
        ("intake POST latency p50 / p95", pair(t["intake_p50_ms"], t["intake_p95_ms"]), load_from),
        ("push latency p50 / p95: batch commit → socket", pair(t["push_p50_ms"], t["push_p95_ms"]),
         f"load: {num(lo.get('push_pairs'))} (commit, socket) pairs" if load else "load: not run"),
        ("item latency p50 / p95: received → done", pair(lo.get("item_p50_ms"), lo.get("item_p95_ms")),
         "load: includes waiting for a shard of 256 items to fill" if load else "load: not run"),
        ("items/s", num(t["items_per_s"]),
         "load: items posted / (first received → last done)" if load else "load: not run"),
        ("chaos run time", f"{fmt(c.get('seconds'))} s" if chaos else "not run",
         "chaos: both runs, start to final status"),
    ]
    failed = [s["name"] for s in steps if not s["ok"]]
    bad = [name for name in ("lost", "duplicates", "server_errors", "partition_lost") if t[name]]
    if failed or bad:
        verdict = ("**Fails**: " + ", ".join([f"{name.replace('_', ' ')} {t[name]}" for name in bad]
                                             + [f"the {name} tests failed" for name in failed]) + ".")
    else:
        verdict = "**Passes**: nothing lost, nothing duplicated, no server error, every test green."
    out = [
        "# Reliability",
        "",
        f"Measured by `bench/report.py` on {when} at {commit}, on {info['cores']} cores ({info['cpu']}), "
        f"{info['database']}, {info['redis']}, Python {info['python']}. Zero is the only acceptable value of the bold "
        "rows; the latencies are from one run on a shared machine, not a promise.",
        "",
        verdict,
        "",
        "| figure | result | measured by |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c_} |" for a, b, c_ in rows],
        "",
        "## How",
        "",
        f"    {command}",
        "",
        "| step | command | result | time |",
        "| --- | --- | --- | --- |",
        *[f"| {s['name']} | `{s['command']}` | {s['result']} | {took(s)} |"
          for s in steps],
        "",
        "- **chaos** (tests/engine/test_worker.py): a `run_worker` process is SIGKILLed ten times at random points "
        "of a 1,000-item run, a fresh one started each time, and the run must finish unattended; in another run "
        "every database connection of the worker is killed with `pg_terminate_backend`, three times two seconds apart. "
        "Lost = items without a done status and a sink decision; duplicates = decisions beyond one per (item, node). "
        "In tests/engine/test_partition.py a worker runs in a network namespace of its own, reaching PostgreSQL only "
        "over a veth pair, with a disk of its own, and runs a model trained after it started (from the database's "
        "artifact store); its link is cut (`ip link set … down`) while it holds a shard, another worker takes the "
        "shard over and finishes the run, then the link comes back and the cut worker's late commit must meet the "
        "fence and write nothing.",
        "- **patterns** (tests/runtimes/test_patterns_adversarial.py): every pattern finder on inputs built to make "
        "a regular expression backtrack (known shapes and ones generated by Hypothesis), each under a budget 100× a "
        "linear scan.",
        "- **load** (tests/load): daphne and two `run_worker` processes on PostgreSQL and channels-redis. Websocket "
        "clients with real session cookies watch the run page socket of a workflow's live run while HTTP clients "
        "post batches of 1–19 items to `/api/workflows/{id}/intake/` with a token, each once a second on a fixed "
        "schedule. Every returned item id must end done with one decision per node; every socket must stay "
        "connected, see counts that never go back, and end on the database's counts. Push latency is measured as "
        "`bench/live.py` does: the workers note each batch commit, the sockets the first update including it.",
        "- **fuzz** (tests/fuzz): requests generated from the OpenAPI schema for every operation, as every role, a "
        "user with no role and anonymous; any 5xx or a response that does not match the schema counts.",
        "",
        "Last line of the report:",
        "",
        f"    {line}",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps ({', '.join(STEPS)})")
    parser.add_argument("--load-seconds", type=float, default=float(os.environ.get("CF_LOAD_SECONDS", "60")))
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}: choose among {', '.join(STEPS)}")

    folder = Path(tempfile.mkdtemp(prefix="cf-reliability-"))
    env = {**os.environ, "CF_RELIABILITY_DIR": str(folder), "CF_LOAD_SECONDS": f"{args.load_seconds:g}",
           "CF_PATTERN_EXAMPLES": os.environ.get("CF_PATTERN_EXAMPLES", "300")}
    if env.get("DATABASE_URL", "").startswith("postgres"):
        env.setdefault("PG_TEST_DB", "test_factory_reliability")
    shown_env = [f"{k}={shlex.quote(masked(env[k]))}" for k in ("DATABASE_URL", "REDIS_URL", "PG_TEST_DB")
                 if env.get(k)]
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    command = " ".join([*shown_env, python, "bench/report.py", *sys.argv[1:]])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    out = Path(args.out)
    commit = checkout(out)
    print(f"reliability report at {commit}: {info['cores']} cores, {info['database']}, {info['redis']}; "
          f"figures in {folder}", flush=True)

    steps = [run_step(name, folder, env) for name in STEPS if name in only]
    chaos, load, fuzz, patterns = (read(folder, name) for name in ("chaos", "load", "fuzz", "patterns"))
    for step in steps:
        if step["ran"] and read(folder, step["name"]) is None:
            step["ok"] = False
            step["result"] += f" (wrote no {FIGURES[step['name']]})"
    figures = totals(chaos, load, fuzz, patterns)
    line = " ".join(f"{k}={fmt(v)}" for k, v in figures.items())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(steps, chaos, load, fuzz, line, info, command, when, commit, patterns))
    print(f"wrote {os.path.relpath(out, ROOT) if str(out).startswith(str(ROOT)) else out}")
    failed = [s["name"] for s in steps if not s["ok"]]
    if failed:
        print(f"failed: {', '.join(failed)}")
    print(line)
    bad = any(figures[k] for k in ("lost", "duplicates", "server_errors", "partition_lost"))
    sys.exit(1 if bad or failed else 0)


if __name__ == "__main__":
    main()
