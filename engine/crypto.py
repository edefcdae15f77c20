"""Encryption at rest of fields marked `encrypted: true` (H5): AES-256-GCM with a random nonce.

A stored value reads `gcm1:<key id>:<base64 nonce+ciphertext>`; the key id lets `rotate` move
values to a new key while old ones still decrypt. A value without the prefix (written before the
field was marked encrypted) reads as it is and is encrypted on its next write or by `rotate`.
Keys come from CRM_ENCRYPTION_KEY (base64 of 32 bytes; several, comma-separated, newest first) or
are generated once into the instance folder.
"""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "gcm1:"
_keys: dict[str, bytes] = {}          # key id -> key; the first is the one that encrypts
_current: list[str | None] = [None]


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def set_keys(keys: list[bytes]) -> None:
    """Install keys, newest (the one that encrypts) first."""
    _keys.clear()
    for k in keys:
        if len(k) != 32:
            raise ValueError("an encryption key is 32 bytes (base64 of 32 random bytes)")
        _keys[key_id(k)] = k
    _current[0] = key_id(keys[0]) if keys else None


def load_keys(env_value: str | None, key_file: Path | None) -> list[bytes]:
    """From CRM_ENCRYPTION_KEY, else a key file created once (mode 0600) in the instance folder."""
    if env_value:
        return [base64.b64decode(part.strip()) for part in env_value.split(",") if part.strip()]
    if key_file is None:
        return []
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    return [base64.b64decode(line.strip()) for line in key_file.read_text().splitlines() if line.strip()]


def encrypt(text: str) -> str:
    kid = _current[0]
    if kid is None:
        raise RuntimeError("no encryption key is configured (CRM_ENCRYPTION_KEY)")
    nonce = os.urandom(12)
    blob = AESGCM(_keys[kid]).encrypt(nonce, text.encode("utf-8"), kid.encode())
    return f"{PREFIX}{kid}:{base64.b64encode(nonce + blob).decode()}"


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored                                   # written before the field was encrypted
    kid, _, data = stored[len(PREFIX):].partition(":")
    key = _keys.get(kid)
    if key is None:
        raise RuntimeError(f"the key {kid} that encrypted this value is not configured")
    raw = base64.b64decode(data)
    return AESGCM(key).decrypt(raw[:12], raw[12:], kid.encode()).decode("utf-8")


def needs_rotation(stored: str | None) -> bool:
    return stored is not None and (not stored.startswith(PREFIX) or not stored.startswith(f"{PREFIX}{_current[0]}:"))


class EncryptedText(sa.types.TypeDecorator):
    """A text column whose values are encrypted on the way in and decrypted on the way out."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        text = str(value)
        if text.startswith(PREFIX) and _is_ciphertext(text):
            return text                      # already encrypted (a backup being restored): keep as is
        return encrypt(text)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return decrypt(value)


def _is_ciphertext(text: str) -> bool:
    try:
        decrypt(text)
        return True
    except Exception:  # noqa: BLE001 - anything that does not decrypt is a plain value
        return False


def raw_select(table):
    """SELECT of a table with encrypted columns as stored (ciphertext), for backups."""
    cols = [sa.cast(c, sa.Text).label(c.name) if isinstance(c.type, EncryptedText) else c for c in table.columns]
    return sa.select(*cols)
