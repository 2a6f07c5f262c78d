"""Waking idle workers the moment a task is enqueued, instead of at their next poll.

Every enqueue on the database task backend (shards from launch and the monitor, governance jobs,
whatever comes next) sends a wake-up through django-tasks' `task_enqueued` signal, so no enqueue
site can forget it:

- PostgreSQL: `pg_notify(CHANNEL)` on the enqueuing connection, in the enqueue's own transaction:
  PostgreSQL delivers it on commit and drops it on rollback, so a worker is never woken for a task it
  cannot see yet, and never misses one it can. Each worker LISTENs on a connection of its own
  (autocommit, psycopg 3) and waits on its socket with poll(); N workers are all woken, SKIP
  LOCKED decides who claims.
- SQLite (the embedded profile): no NOTIFY. Each worker owns a FIFO in a directory beside the
  database file (`<file>.wakeup/`), the processes that share the file share the directory; after
  commit the enqueuing process writes one byte into each FIFO. Cheap (one open and write per
  worker), local, and gone with the file.

Either way the enqueuing process also wakes a worker of its own after commit (the monitor thread
and resumes enqueue inside a worker) without a round trip through the database.

A wake-up is a hint, never the only way a task is found: the worker still polls every
ENGINE_WORKER_POLL_SECONDS, so a lost notification (a dropped LISTEN connection, a process killed
between commit and write) only delays a task. While its LISTEN connection is down a worker polls
every RECONNECT_SECONDS and reconnects; after reconnecting it polls once at once, because the
notifications sent meanwhile are gone.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import select
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "factory_tasks"
RECONNECT_SECONDS = 1.0
APPLICATION_NAME = "factory-wakeup"  # how a worker's LISTEN connection shows in pg_stat_activity
FIFO_SUFFIX = ".fifo"

# The waiters of this process: woken directly after a commit here.
_LOCAL: set[Waiter] = set()


def install() -> None:
    """Send a wake-up on every enqueue of the database task backend (WorkflowsConfig.ready)."""
    from django_tasks.signals import task_enqueued  # deferred with the backend: both import task models
    from django_tasks_db.backend import DatabaseBackend

    task_enqueued.connect(_on_enqueued, sender=DatabaseBackend, dispatch_uid="workflows.engine.wakeup")


def _on_enqueued(sender: Any, **kwargs: Any) -> None:
    notify()


def notify(using: str = DEFAULT_DB_ALIAS) -> None:
    """Wake the idle workers once the current transaction commits (at once outside a transaction).

    One wake-up per transaction is enough (a run of 400 shards sends one): the first enqueue
    registers `_after_commit`, and later ones see it registered. Django drops the registration when
    the (sub)transaction that made it rolls back, as PostgreSQL drops the NOTIFY made in it, so the
    next enqueue sends again."""
    connection = connections[using]
    if connection.in_atomic_block and any(func is _after_commit for _, func, _ in connection.run_on_commit):
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    transaction.on_commit(_after_commit, using=using)


def _after_commit() -> None:
    for waiter in list(_LOCAL):
        waiter.poke()
    folder = fifo_folder(DEFAULT_DB_ALIAS)
    if folder is not None:
        wake_folder(folder)


# --- SQLite: a FIFO per worker ---------------------------------------------------------------------

def fifo_folder(using: str = DEFAULT_DB_ALIAS) -> Path | None:
    """The folder of the workers' FIFOs for a SQLite database file; None on PostgreSQL or in memory."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or "mode=memory" in name:
        return None
    return Path(name + ".wakeup")


def wake_folder(folder: Path) -> int:
    """Write one byte into every worker's FIFO in `folder`; returns how many were woken. A FIFO
    nobody reads (its worker died) is removed; anything that is not a FIFO of this user's is left
    alone and unwritten."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(FIFO_SUFFIX)]
    except FileNotFoundError:
        return 0
    woken = 0
    for entry in entries:
        try:
            # O_NOFOLLOW: a link planted under a FIFO's name is refused (ELOOP), never followed.
            fd = os.open(entry.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader: the worker that made it is gone
                _unlink(entry.path)
            continue
        try:
            if not _ours(os.fstat(fd), stat.S_ISFIFO):
                continue  # a plain file or a device under a FIFO's name: not a worker's
            os.write(fd, b"\0")
            woken += 1
        except BlockingIOError:
            woken += 1  # full: that worker has wake-ups pending already
        except OSError:
            pass
        finally:
            os.close(fd)
    return woken


def _ours(info: os.stat_result, kind: Any) -> bool:
    return bool(kind(info.st_mode)) and info.st_uid == os.geteuid()


def private_folder(folder: Path) -> None:
    """Make the FIFO folder, or check the one there: a folder (not a link) of this user's, that nobody
    else may write in (0700 from the start; a looser mode of ours is tightened). Another user able to
    write in it could leave a link named *.fifo for the enqueuing processes to write into. OSError
    when it is not ours: the worker then polls, as when it cannot listen."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not _ours(info, stat.S_ISDIR):
        raise OSError(errno.EPERM, f"{folder} is not a folder of this user's: no FIFO is made in it")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700, follow_symlinks=False)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _Source(Protocol):
    def fileno(self) -> int: ...
    def drain(self) -> bool: ...
    def healthy(self) -> bool: ...
    def close(self) -> None: ...


class SourceLost(Exception):
    """The wake-up source broke (its connection was closed); the waiter reconnects."""


class _Fifo:
    """A worker's FIFO. Opened read-write, so that it always has a writer: a FIFO whose last
    writer closes reads as end-of-file forever, and poll() would spin on it."""

    def __init__(self, folder: Path):
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        temporary = folder / f".{token}.new"
        for attempt in range(2):
            private_folder(folder)
            try:
                os.mkfifo(temporary, 0o600)
                break
            except FileNotFoundError:  # the last worker to leave removed the folder just now
                if attempt:
                    raise
        self.fd = os.open(temporary, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW)
        if not _ours(os.fstat(self.fd), stat.S_ISFIFO):
            os.close(self.fd)
            raise OSError(errno.EPERM, f"{temporary} was replaced by something else than our FIFO")
        # Published under its final name only once open: a sender finding it earlier would take it
        # for a dead worker's (no reader) and remove it.
        self.path = folder / f"{token}{FIFO_SUFFIX}"
        os.rename(temporary, self.path)

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> bool:
        got = False
        while True:
            try:
                got |= bool(os.read(self.fd, 4096))
            except BlockingIOError:
                return got

    def healthy(self) -> bool:
        return self.path.exists()  # removed by hand (a cleaned var/): make a new one, or nobody finds us

    def close(self) -> None:
        os.close(self.fd)
        _unlink(str(self.path))
        try:
            self.path.parent.rmdir()  # the last one out leaves no folder beside the database file
        except OSError:
            pass  # other workers' FIFOs are still in it


class _Listen:
    """A connection of its own, in autocommit, LISTENing on CHANNEL."""

    def __init__(self, using: str):
        import psycopg  # deferred: only PostgreSQL needs it, and SQLite installs may lack it

        params = connections[using].get_connection_params()
        params.setdefault("application_name", APPLICATION_NAME)
        params.setdefault("connect_timeout", 5)
        # A database host that vanishes without closing the socket is noticed by the kernel's
        # keepalives; the poll covers the meantime.
        params.setdefault("keepalives", 1)
        params.setdefault("keepalives_idle", 30)
        params.setdefault("keepalives_interval", 10)
        params.setdefault("keepalives_count", 3)
        self.errors = (psycopg.Error, OSError)
        try:
            self.conn = psycopg.connect(**params, autocommit=True)
        except self.errors as exc:
            raise SourceLost(str(exc)) from exc
        try:
            self.conn.execute(f"LISTEN {CHANNEL}")
        except self.errors as exc:
            self.close()
            raise SourceLost(str(exc)) from exc

    def fileno(self) -> int:
        return self.conn.fileno()

    def drain(self) -> bool:
        try:
            got = list(self.conn.notifies(timeout=0))
            if not got:
                # Readable with no notification: the server may have closed the connection
                # (pg_terminate_backend, a restart), which psycopg reports only to a query. Without
                # this, poll() would say "readable" forever and the worker would spin.
                self.conn.execute("SELECT 1")
        except self.errors as exc:
            raise SourceLost(str(exc)) from exc
        return bool(got)

    def healthy(self) -> bool:
        return not self.conn.closed

    def close(self) -> None:
        try:
            self.conn.close()
        except self.errors:
            pass


class Waiter:
    """What an idle worker waits on: a wake-up or its poll interval, whichever comes first.

        waiter = Waiter(); waiter.open()
        while running:
            ...claim and run a task, or...
            waiter.wait(interval)
    """

    def __init__(self, using: str = DEFAULT_DB_ALIAS):
        self.using = using
        self.source: _Source | None = None
        self.opened = False
        self.local_only = False  # a database in memory: no other process can share it
        self.next_attempt = 0.0
        self.fresh = False  # just (re)connected: poll once, what was sent meanwhile is lost
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    @property
    def kind(self) -> str:
        return "notify" if connections[self.using].vendor == "postgresql" else "fifo"

    @property
    def listening(self) -> bool:
        return self.source is not None

    def open(self) -> None:
        """Start listening (before the first poll, so no enqueue falls between the two)."""
        _LOCAL.add(self)
        self.opened = True
        self.local_only = self.kind == "fifo" and fifo_folder(self.using) is None
        if not self.local_only:
            self._connect()

    def _connect(self) -> None:
        self.next_attempt = time.monotonic() + RECONNECT_SECONDS
        try:
            if self.kind == "notify":
                self.source = _Listen(self.using)
                said = f"PostgreSQL LISTEN {CHANNEL}"
            else:
                folder = fifo_folder(self.using)
                assert folder is not None  # local_only otherwise
                self.source = _Fifo(folder)
                said = f"FIFO in {folder}"
        except (SourceLost, OSError) as exc:
            logger.warning("cannot listen for wake-ups (%s); polling every %s s meanwhile", exc, RECONNECT_SECONDS)
            self.source = None
            return
        self.fresh = True
        logger.info("listening for wake-ups (%s)", said)

    def _drop(self, reason: object) -> None:
        logger.warning("wake-up listener lost (%s); polling every %s s until it is back", reason, RECONNECT_SECONDS)
        if self.source is not None:
            self.source.close()
        self.source = None
        self.next_attempt = time.monotonic()  # try again at the next wait; a failure waits RECONNECT_SECONDS

    def wait(self, timeout: float) -> bool:
        """Block until a wake-up (True) or `timeout` seconds (False); the caller polls either way."""
        polling = self.opened and not self.local_only and self.source is None
        if polling and time.monotonic() >= self.next_attempt:
            self._connect()
            polling = self.source is None
        if self.fresh:
            self.fresh = False
            return True
        limit = min(timeout, RECONNECT_SECONDS) if polling else timeout
        # poll(), not select(): a worker with many files open may hold descriptors past select's 1024.
        poller = select.poll()
        for fd in [self._read] + ([self.source.fileno()] if self.source is not None else []):
            poller.register(fd, select.POLLIN)
        ready = [fd for fd, _ in poller.poll(max(0.0, limit) * 1000)]
        woken = False
        if self._read in ready:
            woken = self._drain_pipe()
        if self.source is not None and self.source.fileno() in ready:
            try:
                woken |= self.source.drain()
            except SourceLost as exc:
                self._drop(exc)
                return True  # poll now: a wake-up may have been lost with the connection
        elif not ready and self.source is not None and not self.source.healthy():
            self._drop("closed")
        return woken

    def _drain_pipe(self) -> bool:
        got = False
        while True:
            try:
                got |= bool(os.read(self._read, 4096))
            except BlockingIOError:
                return got

    def poke(self) -> None:
        """Wake this waiter (from any thread of this process)."""
        try:
            os.write(self._write, b"\0")
        except (BlockingIOError, OSError):
            pass  # full (wake-ups pending already) or closed

    def close(self) -> None:
        _LOCAL.discard(self)
        self.opened = False
        if self.source is not None:
            self.source.close()
            self.source = None
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
