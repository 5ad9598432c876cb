"""Encryption at rest for Send keys, and the keyed hash that identifies them.

Keys come from HUBSYNC_ENCRYPTION_KEYS (Fernet keys, newest first): the
newest encrypts, all decrypt, so a new key can be put in front and the
stored values re-encrypted with `manage.py rotate_encryption_keys`.

The apiKey is also stored as an HMAC, so that the database can enforce
"one userdb, one node" without the key in clear. The HMAC key is derived
from the newest Fernet key and `rotate_encryption_keys` recomputes the
hashes; until it has run, `identity_hashes` gives the hash under every
configured key, so look-ups still find rows hashed under an older one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_HASH_CONTEXT = b"hubsync send apiKey identity"


def _keys() -> list[bytes]:
    keys = [key.encode() for key in settings.HUBSYNC_ENCRYPTION_KEYS]
    if not keys:
        raise ImproperlyConfigured("HUBSYNC_ENCRYPTION_KEYS holds no key.")
    return keys


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as error:
        raise ImproperlyConfigured(
            "HUBSYNC_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys."
        ) from error


def encrypt(plaintext: str) -> str:
    """Encrypt with the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever configured key fits."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with HUBSYNC_ENCRYPTION_KEYS."
        ) from error


def reencrypt(ciphertext: str) -> str:
    """Re-encrypt a stored value with the newest key."""
    return _fernet().rotate(ciphertext.encode()).decode()


def identity_hash(api_key: str, key: bytes | None = None) -> str:
    """Return the keyed hash (hex HMAC-SHA256) that identifies an apiKey."""
    secret = key if key is not None else hash_key()
    return hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()


def hash_key(fernet_key: bytes | None = None) -> bytes:
    """Return the HMAC key derived from a Fernet key (the newest by default)."""
    raw = base64.urlsafe_b64decode(fernet_key or _keys()[0])
    return hmac.new(raw, _HASH_CONTEXT, hashlib.sha256).digest()


def identity_hashes(api_key: str) -> list[str]:
    """Return the apiKey's hash under every configured key, newest first."""
    return [identity_hash(api_key, hash_key(key)) for key in _keys()]


def hint(secret: str) -> str:
    """Return the last four characters, shown in place of a secret."""
    return secret[-4:] if len(secret) > 4 else ""
