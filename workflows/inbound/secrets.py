"""Secrets a channel must read back (an IMAP password, an inbound webhook's HMAC secret), encrypted
at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from FACTORY_CREDENTIALS_KEY (a Fernet key: `python -c "from cryptography.fernet import
Fernet; print(Fernet.generate_key().decode())"`), so a copy of the database alone does not reveal them.
With DEBUG on and no key (the embedded demo) it is derived from SECRET_KEY; in production without a key
nothing is saved, with an error that says what to set.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils.translation import gettext

KEY_ENV = "FACTORY_CREDENTIALS_KEY"


class SecretsUnavailable(Exception):
    """No key to encrypt with, or the stored value was encrypted with another key."""


def _fernet() -> Fernet:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        if not settings.DEBUG:
            raise SecretsUnavailable(gettext(
                "Credentials cannot be stored: set %(env)s to a Fernet key on every web and worker machine.")
                % {"env": KEY_ENV})
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest()).decode()
    try:
        return Fernet(key.encode())
    except ValueError:
        raise SecretsUnavailable(gettext("%(env)s is not a valid Fernet key (32 url-safe base64-encoded bytes).")
                                 % {"env": KEY_ENV}) from None


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnavailable(gettext(
            "A stored credential cannot be decrypted: %(env)s differs from the key it was saved with.")
            % {"env": KEY_ENV}) from None
