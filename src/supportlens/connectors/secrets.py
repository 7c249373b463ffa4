"""Credentials at rest: encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``)
under a key from the settings (``SUPPORTLENS_SECRET_KEY``), a secrets file
(``SUPPORTLENS_SECRET_KEY_FILE``), or else a key file SupportLens creates once in the data directory
(readable by its owner only).  Losing the key makes stored credentials unreadable (say so, never
guess); they are never returned by the API nor logged."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from supportlens.config import Settings

KEY_FILE_NAME = "secret.key"


class SecretKeyError(RuntimeError):
    """The key is missing, malformed, or not the one the credentials were stored with."""


def _key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().strip().encode()
    path = settings.secret_key_file or settings.data_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_bytes().strip()
    if settings.secret_key_file is not None:
        raise SecretKeyError(f"the secret key file {path} does not exist")
    return _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key)
    return key


class SecretBox:
    """Encrypts and decrypts the credentials of connections."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretKeyError("the secret key must be 32 url-safe base64-encoded bytes (Fernet)") from None

    @classmethod
    def open(cls, settings: Settings) -> SecretBox:
        return cls(_key(settings))

    def seal(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def unseal(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise SecretKeyError(
                "stored credentials do not open with the configured secret key (was it changed?)"
            ) from None
