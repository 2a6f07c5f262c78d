"""A small IMAP client over TLS only, built on the standard library's imaplib.

Every failure is an `ImapProblem` naming the stage that failed (dns, connect, timeout, tls, login,
folder, processed_folder, protocol) with the server's or the TLS library's own words, so a person
setting up a mailbox learns what to fix. Every socket operation has a timeout (imaplib applies the
one given to the connection to every read and write, and the name lookup gets the same bound here).
Pure Python: no Django.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

IMAPS, STARTTLS = "imaps", "starttls"
STAGES = ("dns", "connect", "timeout", "tls", "login", "folder", "processed_folder", "protocol")
HEADER_BYTES = 65536  # enough of a header for its Message-ID and its hash; a longer one is cut there


class ImapProblem(Exception):
    def __init__(self, stage: str, detail: str):
        assert stage in STAGES, stage
        self.stage = stage
        self.detail = detail[:1000]
        super().__init__(f"{stage}: {self.detail}")


@dataclass(frozen=True)
class Account:
    host: str
    port: int
    security: str
    username: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = ""


def quote_folder(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 §5.1.3) in a quoted string (imaplib
    sends arguments as they are, so a space or a non-ASCII letter would break the command)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + encoded.decode() + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return '"' + "".join(out).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: Any) -> str:
    if isinstance(data, list | tuple):
        data = data[-1] if data else b""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo has no timeout of its own: it runs in a helper thread that is abandoned after
    `timeout` seconds (a hung resolver must not hold the worker's monitor)."""
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            found["error"] = exc

    thread = threading.Thread(target=lookup, name="imap-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ImapProblem("dns", f"no answer from the name server within {timeout:g} s")
    if "error" in found:
        error = found["error"]
        raise ImapProblem("dns", getattr(error, "strerror", None) or str(error))
    return found["addresses"]


class _Pinned:
    """Connect to the address resolved beforehand (one lookup, bounded), while TLS still checks the
    certificate against the host name."""

    address: tuple

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(self.address[:2], timeout)


class _Plain(_Pinned, imaplib.IMAP4):
    def __init__(self, host: str, port: int, address: tuple, timeout: float):
        self.address = address
        super().__init__(host, port, timeout=timeout)


class _Tls(_Pinned, imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, address: tuple, timeout: float, context: ssl.SSLContext):
        self.address = address
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = _Pinned._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def _tls_detail(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted: {exc.verify_message}"
    return exc.reason or str(exc)


class Session:
    """One logged-in connection with the mailbox's folder selected. Use as a context manager."""

    def __init__(self, account: Account, *, timeout: float, context: ssl.SSLContext | None = None):
        self.account = account
        self.timeout = timeout
        self.context = context or ssl.create_default_context()
        self.imap: imaplib.IMAP4 | None = None
        self.uidvalidity: int | None = None
        self._caps: set[str] | None = None

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- opening: each stage fails with its own name ----------------------------------------------

    def open(self) -> None:
        account = self.account
        addresses = resolve(account.host, account.port, self.timeout)
        self.imap = self._connect(addresses[0][4])
        try:
            self._login()
            self._select()
            if account.processed_folder:
                self._check_processed_folder()
        except BaseException:
            self.close()
            raise

    def _connect(self, address: tuple) -> imaplib.IMAP4:
        account = self.account
        stage = "connect"
        try:
            if account.security == IMAPS:
                return _Tls(account.host, account.port, address, self.timeout, self.context)
            imap = _Plain(account.host, account.port, address, self.timeout)
            stage = "tls"
            if "STARTTLS" not in imap.capabilities:
                imap.shutdown()
                raise ImapProblem("tls", "the server does not offer STARTTLS; a password is never sent "
                                         "unencrypted (use IMAPS if the server has it)")
            imap.starttls(self.context)
            return imap
        except ImapProblem:
            raise
        except TimeoutError:
            raise ImapProblem("timeout", f"no answer within {self.timeout:g} s while connecting") from None
        except ssl.SSLError as exc:
            raise ImapProblem("tls", _tls_detail(exc)) from None
        except (imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
            raise ImapProblem(stage, _text(exc.args)) from None
        except OSError as exc:
            raise ImapProblem("connect", exc.strerror or str(exc)) from None

    def _login(self) -> None:
        imap, account = self.imap, self.account
        assert imap is not None
        try:
            if (account.username + account.password).isascii():
                imap.login(imap._quote(account.username), account.password)  # quoted: a space or a quote is fine
            elif "AUTH=PLAIN" in imap.capabilities:
                # LOGIN's arguments are ASCII in imaplib; SASL PLAIN carries UTF-8.
                secret = f"\0{account.username}\0{account.password}".encode()
                imap.authenticate("PLAIN", lambda challenge: secret)
            else:
                raise ImapProblem("login", "the username or password has non-ASCII characters and the server does "
                                           "not offer AUTH=PLAIN to send them")
        except ImapProblem:
            raise
        except TimeoutError:
            raise ImapProblem("timeout", f"no answer within {self.timeout:g} s while logging in") from None
        except imaplib.IMAP4.error as exc:
            raise ImapProblem("login", _text(exc.args)) from None
        except OSError as exc:
            raise ImapProblem("connect", str(exc)) from None

    def _select(self) -> None:
        typ, data = self._call("folder", self._imap.select, quote_folder(self.account.folder))
        if typ != "OK":
            raise ImapProblem("folder", _text(data))
        _, values = self._imap.response("UIDVALIDITY")
        value = values[0] if values and values[0] else b""
        self.uidvalidity = int(value) if value and value.isdigit() else None

    def _check_processed_folder(self) -> None:
        typ, data = self._call("processed_folder", self._imap.status,
                               quote_folder(self.account.processed_folder), "(MESSAGES)")
        if typ != "OK":
            raise ImapProblem("processed_folder", _text(data))

    # --- reading and marking ----------------------------------------------------------------------

    @property
    def _imap(self) -> imaplib.IMAP4:
        assert self.imap is not None, "open() first"
        return self.imap

    def _call(self, stage: str, method: Any, *args: Any) -> tuple[str, list]:
        try:
            return method(*args)
        except TimeoutError:
            raise ImapProblem("timeout", f"no answer within {self.timeout:g} s") from None
        except imaplib.IMAP4.abort as exc:
            raise ImapProblem("protocol", _text(exc.args)) from None
        except imaplib.IMAP4.error as exc:
            if stage in ("folder", "processed_folder"):
                return "NO", [_text(exc.args).encode()]
            raise ImapProblem("protocol", _text(exc.args)) from None
        except (ssl.SSLError, OSError) as exc:
            raise ImapProblem("connect", str(exc)) from None

    def _checked(self, *args: Any) -> list:
        typ, data = self._call("protocol", self._imap.uid, *args)
        if typ != "OK":
            raise ImapProblem("protocol", f"UID {args[0]}: {_text(data)}")
        return data

    def unseen(self) -> list[int]:
        """UIDs of the folder's messages without the \\Seen flag, oldest first."""
        data = self._checked("SEARCH", "UNSEEN")
        return sorted(int(u) for u in b" ".join(d for d in data if d).split() if u.isdigit())

    def header(self, uid: int) -> tuple[int, bytes] | None:
        """(size in bytes, raw header) of a message, without setting \\Seen; None when it is gone."""
        data = self._checked("FETCH", str(uid), f"(RFC822.SIZE BODY.PEEK[HEADER]<0.{HEADER_BYTES}>)")
        size, literal = _fetched(data)
        return None if size is None else (size, literal or b"")

    def body(self, uid: int, limit: int) -> bytes | None:
        """The raw message, at most limit + 1 bytes (a server that lies about the size cannot make us
        read more), without setting \\Seen; None when it is gone."""
        data = self._checked("FETCH", str(uid), f"(BODY.PEEK[]<0.{limit + 1}>)")
        return _fetched(data, need_size=False)[1]

    def mark(self, uid: int) -> None:
        """Flag \\Seen and, when a folder for taken messages is set, move the message there."""
        self._checked("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        folder = self.account.processed_folder
        if not folder:
            return
        if "MOVE" in self._capabilities():
            self._checked("MOVE", str(uid), quote_folder(folder))
            return
        self._checked("COPY", str(uid), quote_folder(folder))
        self._checked("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
        if "UIDPLUS" in self._capabilities():  # without it an EXPUNGE would also remove what others deleted
            self._checked("EXPUNGE", str(uid))

    def _capabilities(self) -> set[str]:
        if self._caps is None:
            typ, data = self._call("protocol", self._imap.capability)
            self._caps = set(_text(data).upper().split()) if typ == "OK" else set()
        return self._caps

    def close(self) -> None:
        if self.imap is None:
            return
        try:
            self.imap.logout()
        except Exception:  # closing a connection that already failed: nothing left to tell
            try:
                self.imap.shutdown()
            except Exception:  # the socket is gone already
                pass
        self.imap = None


SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def _fetched(data: list, need_size: bool = True) -> tuple[int | None, bytes | None]:
    """(RFC822.SIZE, first literal) of one message's FETCH answer (imaplib gives tuples for the
    parts with a literal and bytes for the rest; the size may come before or after the literal)."""
    size = None
    literal = None
    for part in data or []:
        if isinstance(part, tuple):
            head = part[0]
            literal = part[1] if literal is None else literal
        else:
            head = part
        if isinstance(head, bytes):
            found = SIZE.search(head)
            if found:
                size = int(found.group(1))
    if need_size:
        return size, literal
    return None, literal
