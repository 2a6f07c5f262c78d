"""A real SMTP server for the digest tests (aiosmtpd on a free loopback port, every message kept), and
the settings that make the app send to it."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage

import pytest


class Inbox:
    """aiosmtpd's handler: keeps every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def mail(settings, smtp_server):
    """E-mail on, through Django's SMTP backend (pytest-django swaps in the in-memory one) to the real server."""
    controller, inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = controller.hostname
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "factory@example.it"
    settings.NOTIFY_SITE_URL = "https://factory.example.it"
    return inbox


@pytest.fixture
def no_mail(settings):
    """No mail server named: `make run`'s situation."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = ""
