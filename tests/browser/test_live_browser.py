"""Live metrics in a real browser against a live daphne (ASGI) subprocess and a real `run_worker`
process, both on the test database: start a run from the upload page, watch the progress bar and
the canvas badges change without a reload, reach 100 %; kill daphne mid-run and see the socket
reconnect and resync from the snapshot.

Push mode (channels-redis) when REDIS_URL is set; poll mode (the embedded default) always.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser.conftest import shot, watch_csp
from tests.engine.helpers import make_runnable_workflow
from tests.engine.test_worker import Workers, worker_env
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
ITEMS = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daphne:
    def __init__(self, env: dict[str, str], port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                                      "factory.asgi:application"],
                                     cwd=ROOT, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"daphne did not start:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def modes() -> list:
    return [pytest.param("push", marks=pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")),
            "poll"]


@pytest.mark.parametrize("mode", modes())
def test_a_run_goes_live_on_the_canvas_and_the_run_page(browser, personas, tmp_path, settings, mode):
    settings.ENGINE_SHARD_SIZE = 100
    settings.ENGINE_BATCH_SIZE = 10
    workflow = make_runnable_workflow(personas["designer"])
    extra = {"ENGINE_HANDLER_MODULES": "tests.engine.slow_handlers", "SLOW_EXTRACT_MS": "10",
             "CHANNEL_PREFIX": f"live-{uuid.uuid4().hex[:8]}"}
    if mode == "poll":
        extra["REDIS_URL"] = ""
    workers = Workers(tmp_path, **extra)
    # The test's SECRET_KEY, so that daphne accepts the session made here.
    web_env = {**worker_env(**extra), "DEBUG": "1", "LOG_LEVEL": "WARNING", "SECRET_KEY": settings.SECRET_KEY}
    port = free_port()
    daphne = Daphne(web_env, port, tmp_path / "daphne.log")
    daphne.start()
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}", viewport={"width": 1500, "height": 900})
    context.set_default_timeout(15_000)
    problems: list[tuple[bool, str]] = []  # (daphne was down, message)
    down = [False]
    # the sockets pass connect-src, whether daphne is up or not
    watch_csp(context, lambda text: problems.append((False, text)))
    try:
        workers.start()
        canvas = context.new_page()
        runs = context.new_page()
        for p in (canvas, runs):
            p.on("pageerror", lambda exc: problems.append((down[0], f"page error: {exc}")))
            p.on("console", lambda msg: problems.append((down[0], msg.text)) if msg.type == "error" else None)
        # A session made here (the test's hashers are not daphne's, so no login form): the sessions
        # table is in the shared database.
        client = Client()
        client.force_login(personas["operator"])
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": f"http://127.0.0.1:{port}"}])

        canvas.goto(f"/workflows/{workflow.pk}/")
        canvas.wait_for_selector("#drawflow[data-ready='true']")
        expect(canvas.locator("#cf-live-run")).to_contain_text("No runs yet")
        canvas.evaluate("window.__noReload = true")

        # Start the run from the upload page: it lands on the run page.
        data = "text,lang\n" + "".join(f"Write to user{i}@example.com about invoice {i},{'it' if i % 2 else 'en'}\n"
                                       for i in range(ITEMS))
        upload = tmp_path / "tickets.csv"
        upload.write_text(data)
        runs.goto(f"/workflows/{workflow.pk}/run/")
        runs.set_input_files("input[type=file]", str(upload))
        runs.click("button.primary")
        runs.wait_for_url(lambda url: "/runs/" in url)
        run = Run.objects.latest("id")
        runs.evaluate("window.__noReload = true")
        expect(runs.locator("#live-conn")).to_have_text("live")

        progress = runs.locator(f"#run-{run.pk}-progress")
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            value = progress.get_attribute("value") or "0"
            seen.add(value)
            if 0.2 < float(value) < 0.8:
                break
            time.sleep(0.1)
        assert len(seen - {"0", "0.000"}) >= 1, seen  # it moved, and we did not reload
        # The canvas follows the new run: badges and edge counts fill in.
        expect(canvas.locator("#cf-live-run")).to_contain_text(f"Run #{run.pk}")
        expect(canvas.locator("#cf-live-ext .cf-live-in")).not_to_have_text("0")
        expect(canvas.locator("text.cf-edge-count[data-source='route'][data-port='italian']")).to_have_count(1)
        shot(canvas, f"live-canvas-{mode}")

        # Drop the connection in the middle of the run: htmx-ext-ws reconnects, the snapshot resyncs.
        down[0] = True
        daphne.kill()
        expect(runs.locator("#live-conn")).to_have_text("reconnecting…")
        daphne.start()
        expect(runs.locator("#live-conn")).to_have_text("live", timeout=20_000)
        canvas.wait_for_function("() => document.querySelector('#cf-live-run') !== null")
        time.sleep(0.5)
        down[0] = False

        expect(progress).to_have_attribute("value", "1.000", timeout=60_000)
        expect(runs.locator(f"#run-{run.pk}-status")).to_have_attribute("data-status", "succeeded", timeout=10_000)
        expect(runs.locator(f"#live-{run.pk}-out-stats .live-in")).to_have_text(str(ITEMS))
        expect(runs.locator("#node-route-stats")).to_contain_text("italian: 300")
        assert int(runs.locator(f"#spark-{run.pk}-ext").get_attribute("data-points") or 0) >= 2
        expect(canvas.locator("#cf-live-out .cf-live-in")).to_have_text(str(ITEMS), timeout=10_000)
        expect(canvas.locator("text.cf-edge-count[data-source='route'][data-port='italian']")).to_have_text("300")
        assert runs.evaluate("window.__noReload") and canvas.evaluate("window.__noReload")
        shot(runs, f"live-run-{mode}")
    finally:
        context.close()
        workers.stop()
        daphne.kill()
    # While daphne was down the sockets failed (htmx logs the error events); nothing else may be
    # logged, but chromium's line for any 4xx answer (the favicon).
    unexpected = [text for was_down, text in problems
                  if not was_down and "the server responded with a status of 4" not in text]
    assert not unexpected, "\n".join(unexpected)
