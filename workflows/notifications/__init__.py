"""Telling people what happened: an in-app inbox with a bell, and e-mail digests.

Layering: this package sits just above the tables (tests/test_layout.py), so engine/, governance/ and
kpi/ call it at the one place each event happens, and it imports only the models, roles.py and Django.
Periodic checks that belong to higher layers (drift, packs to sign) are handed to the monitor duty by
the process that wires it (run_worker), never imported from here.

    events.py   who receives each kind; one function per event, each safe to call anywhere
    texts.py    the sentence of a notification in the reader's language
    inbox.py    a user's own notifications, preferences and e-mail language
    digest.py   one e-mail per user listing what is pending, at most every NOTIFY_DIGEST_MINUTES
    duty.py     the monitor duty: digests and the periodic checks
"""

from __future__ import annotations

from .duty import Duty, tick
from .events import notify, users_with

__all__ = ["Duty", "notify", "tick", "users_with"]
