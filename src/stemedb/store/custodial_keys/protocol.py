"""What a custodial key store does, whichever backend keeps it (``sqlite``, ``postgres``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

from stemedb.errors import ConflictError
from stemedb.model.signing import AgentKey


class CustodialKey(msgspec.Struct, kw_only=True, frozen=True):
    """One custodial key as listed: never the private half."""

    agent_id: str
    api_key_id: str
    created_at: float
    revoked_at: float | None = None


def key_of_row(row: Any) -> CustodialKey:
    """``(agent_id, api_key_id, created_at, revoked_at)`` as a ``CustodialKey``."""
    return CustodialKey(agent_id=row[0], api_key_id=row[1], created_at=row[2], revoked_at=row[3])


def exists_error(api_key_id: str) -> ConflictError:
    return ConflictError(
        f"API key {api_key_id} has a custodial key already; revoke it first",
        code="custodial_key_exists",
        details={"api_key_id": api_key_id},
    )


class CustodialKeys(Protocol):
    """Blocking and thread-safe; every call is durable when it returns."""

    def create(self, api_key_id: str, now: float) -> CustodialKey:
        """A fresh custodial key for ``api_key_id``; 409 if it has a usable one."""
        ...

    def signer(self, api_key_id: str) -> AgentKey | None:
        """The usable custodial key of ``api_key_id`` (None: it has none)."""
        ...

    def all(self) -> list[CustodialKey]: ...

    def of_agents(self, agent_ids: Iterable[str]) -> list[CustodialKey]:
        """The custodial keys (usable or revoked) among ``agent_ids``."""
        ...

    def revoke(self, agent_id: str, now: float) -> CustodialKey | None:
        """Erase the private half of ``agent_id`` (the row stays); None if unknown."""
        ...

    def close(self) -> None: ...
