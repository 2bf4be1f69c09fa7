"""API keys (ARCHITECTURE §8): roles, the wire shape, secrets and their hashes.

A secret is ``stm_`` + 43 URL-safe base64 characters (256 random bits). Only its
SHA-256 is stored (``docs/design/adr-0001-api-keys.md`` says why a fast hash is enough
for a 256-bit random secret and why keys live in ``<data_dir>/keys.sqlite``). The
secret is shown once, when the key is created; no listing ever carries it or its hash.

Roles nest: ``reader`` may read, ``writer`` may read and write, ``admin`` may do both
and reach ``/v1/admin/*``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final, Literal

import msgspec

from stemedb.errors import ValidationError

Role = Literal["reader", "writer", "admin"]
ROLES: Final[tuple[Role, ...]] = ("reader", "writer", "admin")
ROLE_RANK: Final[dict[str, int]] = {"reader": 0, "writer": 1, "admin": 2}

SECRET_PREFIX: Final = "stm_"
SECRET_RANDOM_BYTES: Final = 32
KEY_ID_RANDOM_BYTES: Final = 8
ROOT_KEY_ID: Final = "root"
ROOT_KEY_MIN_CHARS: Final = 32
KEY_NAME_MAX_CHARS: Final = 128


class ApiKey(msgspec.Struct, kw_only=True):
    """An API key as the admin API lists it: never the secret, never its hash."""

    id: str
    name: str
    role: Role
    enabled: bool
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    # created while API keys were off (anyone could): refused once keys are on, until
    # an admin confirms it (POST /v1/admin/api-keys/{id}/confirm) or deletes it
    minted_open: bool = False


class CreatedApiKey(ApiKey, kw_only=True):
    """The answer to creating a key: the only time ``secret`` is ever shown."""

    secret: str


def new_secret() -> str:
    """A fresh secret: ``stm_`` + 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def new_key_id() -> str:
    """A fresh key id: 16 lowercase hex characters (not secret; names the key)."""
    return secrets.token_hex(KEY_ID_RANDOM_BYTES)


def hash_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256, lowercase hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(stored: str, presented: str) -> bool:
    """Constant-time comparison of two secret hashes."""
    return hmac.compare_digest(stored.encode("ascii"), presented.encode("ascii"))


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (admin ⊇ writer ⊇ reader)."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValidationError("role", "choice", "role must be one of admin, writer, reader")


def check_name(name: str) -> str:
    if not 1 <= len(name) <= KEY_NAME_MAX_CHARS or any(
        ord(c) < 0x20 or ord(c) == 0x7F for c in name
    ):
        raise ValidationError(
            "name",
            "format",
            f"name must be 1-{KEY_NAME_MAX_CHARS} characters without control characters",
        )
    return name


def check_root_secret(secret: str) -> str:
    """The configured root key must be long enough to be unguessable."""
    if len(secret) < ROOT_KEY_MIN_CHARS:
        raise ValidationError(
            "auth.root_api_key",
            "too_short",
            f"auth.root_api_key (STEMEDB_ROOT_API_KEY) must be at least {ROOT_KEY_MIN_CHARS}"
            " characters; generate one with `openssl rand -hex 32`",
            code="root_key_too_short",
        )
    return secret


__all__ = [
    "ROLES",
    "ROOT_KEY_ID",
    "ApiKey",
    "CreatedApiKey",
    "Role",
    "check_name",
    "check_role",
    "check_root_secret",
    "hash_secret",
    "new_key_id",
    "new_secret",
    "role_allows",
    "same_hash",
]
