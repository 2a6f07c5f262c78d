from __future__ import annotations

# The real IMAP server of the session and a mail account of its own per test (used as fixtures).
from tests.inbound.mail.imap_server import dovecot  # noqa: F401
from tests.inbound.mail.mail_helpers import account, trusted  # noqa: F401
