"""Credentials kept in the store are sealed (encrypted and authenticated) at rest.

Notification channels added through the API carry passwords, tokens and webhook
secrets; they are stored as Fernet tokens (AES-128-CBC with HMAC-SHA256), never in
clear. The key is ``secret_key`` from the settings (``MODELMONITOR_SECRET_KEY``: give
every API replica and worker the same one), else ``data_dir/secret-key``, created with
32 random bytes (mode 0600) on first use, which serves everything on one machine.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["SealError", "Sealer", "load_sealer"]

_KEY_FILE = "secret-key"
#: Marks a sealed document in a text column (anything else is read as legacy clear text).
PREFIX = "sealed:"


class SealError(ValueError):
    """A sealed value that this key cannot open (another key, or tampered with)."""


class Sealer:
    def __init__(self, secret: bytes) -> None:
        # Fernet wants 32 url-safe base64 bytes; any secret is stretched to that.
        key = hashlib.sha256(b"modelmonitor-sealing\x00" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: bytes) -> str:
        return PREFIX + self._fernet.encrypt(data).decode("ascii")

    def open(self, text: str) -> bytes:
        if not text.startswith(PREFIX):
            return text.encode()  # stored before sealing existed
        try:
            return self._fernet.decrypt(text[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            raise SealError(
                "a stored credential was sealed with another secret_key: give every API "
                "replica and worker the same MODELMONITOR_SECRET_KEY"
            ) from None


def load_sealer(data_dir: Path, given: str | None = None) -> Sealer:
    """The sealer for ``given`` (settings or env), else for ``data_dir``'s key file."""
    if given:
        return Sealer(given.encode())
    path = data_dir / _KEY_FILE
    try:
        return Sealer(bytes.fromhex(path.read_text().strip()))
    except FileNotFoundError:
        pass
    except ValueError:
        raise ValueError(f"{path} is not a hex secret; remove it to make a new one") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this machine made it first
        return Sealer(bytes.fromhex(path.read_text().strip()))
    with os.fdopen(descriptor, "w") as out:
        out.write(secret.hex() + "\n")
    return Sealer(secret)
