"""A real IMAP server for the mailbox tests: Debian's dovecot, run standalone with its own config in a
temporary folder (high ports on 127.0.0.1, IMAPS and STARTTLS, a self-signed certificate made here,
passwd-file users, maildirs under the folder). `make test` installs it (the `imap-server` target).

Messages are delivered with IMAP APPEND, as a mail server's delivery agent would put them there.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT_PATHS = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in DOVECOT_PATHS if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class Dovecot:
    def __init__(self, binary: str):
        self.binary = binary
        # Not under pytest's tmp_path: dovecot's unprivileged processes must reach these folders.
        self.root = Path(tempfile.mkdtemp(prefix="cf-dovecot-"))
        self.root.chmod(0o755)
        self.imaps_port, self.imap_port = free_port(), free_port()
        self.ca_file, self.key_file = self_signed(self.root)
        # One passwd file per user (dovecot opens the one the login names): a user added while the server
        # runs is known at once, with no reload.
        self.users = self.root / "users"
        self.users.mkdir()
        self.process: subprocess.Popen | None = None

    def _config(self) -> str:
        r = self.root
        home = r / "home"
        home.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            # Dovecot refuses mail access as root: the maildirs belong to nobody.
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(home, uid, gid)
            users, chroot = "", ""
        else:
            uid, gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(uid).pw_name
            # Rootless: every process runs as this user, and none can chroot.
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\nfirst_valid_uid = {uid}\n"
            chroot = "  chroot =\n"
        return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
instance_name = cf-test-{r.name}
log_path = {r}/dovecot.log
ssl = required
ssl_cert = <{self.ca_file}
ssl_key = <{self.key_file}
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%u
}}
# No growing delay after failed logins from 127.0.0.1 (the tests fail logins on purpose, one after another):
# the auth process cannot reach anvil's penalty socket, so it imposes none.
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
"""

    def start(self) -> None:
        config = self.root / "dovecot.conf"
        config.write_text(self._config())
        log = open(self.root / "stdout.log", "w")
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.imaps_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in (self.root / "stdout.log", self.root / "dovecot.log")
                         if p.exists())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- users and mail ---------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        (self.users / name).write_text(f"{name}:{{PLAIN}}{password}::::::\n")

    def client(self, user: str, password: str) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("localhost", self.imaps_port, ssl_context=context, timeout=10)
        imap.login(user, password)
        return imap

    def deliver(self, user: str, password: str, raw: bytes, folder: str = "INBOX") -> None:
        imap = self.client(user, password)
        try:
            typ, data = imap.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            imap.logout()

    def create_folder(self, user: str, password: str, folder: str) -> None:
        imap = self.client(user, password)
        try:
            imap.create(folder)
        finally:
            imap.logout()

    def flags(self, user: str, password: str, folder: str = "INBOX") -> list[str]:
        """Each message's flags in the folder, oldest first."""
        imap = self.client(user, password)
        try:
            imap.select(folder)
            _typ, data = imap.fetch("1:*", "(FLAGS)")
            return [] if not data or data[0] is None else [d.decode() for d in data if isinstance(d, bytes)]
        finally:
            imap.logout()

    def count(self, user: str, password: str, folder: str = "INBOX") -> int:
        imap = self.client(user, password)
        try:
            _typ, data = imap.select(folder)
            return int(data[0])
        finally:
            imap.logout()


@pytest.fixture(scope="session")
def dovecot():
    binary = dovecot_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot must be installed in CI (make test installs Debian's dovecot-imapd)")
        pytest.skip("dovecot is not installed (make test installs Debian's dovecot-imapd when run as root)")
    server = Dovecot(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
