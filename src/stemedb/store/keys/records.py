"""What the key stores hold: keys (hashes only), rate-limit overrides, shared breakers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from stemedb.model.apikey import ApiKey

OverrideScope = Literal["agent", "key"]


class StoredKey(ApiKey, kw_only=True):
    """A key as stored: the public fields plus the SHA-256 of its secret."""

    secret_hash: str

    def public(self) -> ApiKey:
        return ApiKey(
            id=self.id,
            name=self.name,
            role=self.role,
            enabled=self.enabled,
            created_at=self.created_at,
            expires_at=self.expires_at,
            last_used_at=self.last_used_at,
            minted_open=self.minted_open,
        )


def key_of_row(r: Sequence[Any]) -> StoredKey:
    """A key from a row of ``id, name, role, secret_hash, enabled, created_at,
    expires_at, last_used_at, minted_open`` (both stores' column order)."""
    return StoredKey(
        id=r[0],
        name=r[1],
        role=r[2],
        secret_hash=r[3],
        enabled=bool(r[4]),
        created_at=r[5],
        expires_at=r[6],
        last_used_at=r[7],
        minted_open=bool(r[8]),
    )


class RateOverride(msgspec.Struct, kw_only=True):
    """An admin override of the per-agent or per-key rate limit."""

    scope: OverrideScope
    target: str
    max_requests_per_min: int
    created_at: float


class SharedBreaker(msgspec.Struct, kw_only=True):
    """An open per-agent breaker as every node of a cluster sees it (cluster mode).

    ``opened_at``: Unix seconds when it opened (or opened again after a failed trial);
    ``forced``: tripped by an admin (open until reset); ``node_id``: where it opened."""

    agent_id: str
    forced: bool
    failures: int
    opened_at: float
    reason: str | None
    node_id: str


__all__ = ["OverrideScope", "RateOverride", "SharedBreaker", "StoredKey", "key_of_row"]
