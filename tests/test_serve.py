"""`make run`'s last step: one command starts the web server and a worker; Ctrl+C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in {"Z", "X"}


@pytest.mark.slow
def test_serve_starts_web_and_worker_and_stops_both_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(FACTORY_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--llm-port", "0"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        login = None
        while time.monotonic() < deadline:
            try:
                login = urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert login and "Log in" in login
        schema = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=5).read().decode()
        assert "openapi" in schema
        children = _children(proc.pid)
        assert len(children) == 2, children  # web + worker (the test passes --llm-port 0)
        commands = [Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode() for c in children]
        assert any("daphne" in c for c in commands) and any("worker" in c for c in commands), commands
        assert all(_alive(c) for c in children)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        time.sleep(0.5)
        assert not any(_alive(c) for c in children), "a child outlived Ctrl+C"
    finally:
        if proc.poll() is None:
            proc.kill()
