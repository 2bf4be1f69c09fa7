"""What the dashboard needs from the server it is mounted in (``Host``).

The dashboard depends on the query services and ``wire`` only (its import-linter
contract): the API layer hands it a ``Host`` (``api.ui_host``) that answers with the
same objects its own routes use — the ``QueryService``, the read pool, readiness, the
feed hub — and admits a viewer with the same key check and role policy as the JSON
twin of each page (``admit``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from stemedb.config import Config
from stemedb.model.signing import AgentKey
from stemedb.query.service import QueryService

T = TypeVar("T")


class Principal(msgspec.Struct, frozen=True):
    """Who is looking: an API key (id, name, role), or anonymous (``key_id`` None)."""

    key_id: str | None
    name: str
    role: str | None


ANONYMOUS = Principal(key_id=None, name="anonymous", role=None)


class Host(Protocol):
    """The server side of the dashboard (implemented by ``api.ui_host.ApiHost``)."""

    @property
    def config(self) -> Config: ...

    @property
    def version(self) -> str: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def service(self) -> QueryService:
        """The query service of the API (503 ``not_ready`` while starting)."""
        ...

    async def offload(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn`` on the API's read pool, through its storage guard."""
        ...

    def uptime_seconds(self) -> float: ...

    async def readiness(self) -> tuple[list[str], int]:
        """``/ready``'s reasons (empty: ready) and the applied LSN."""
        ...

    def authenticate(self, secret: str) -> Principal:
        """The key holding ``secret``; 401 when it is unknown, disabled or expired."""
        ...

    def need(self, path: str, method: str) -> str | None:
        """The least role the API's route ``method path`` asks for (None: public)."""
        ...

    async def admit(self, secret: str | None, path: str, method: str) -> Principal:
        """The viewer holding ``secret`` (None: no session) if the route ``method path``
        of the API would let them in; else the guard's 401/403 (a ``StemeError``)."""
        ...

    async def signer(self, api_key_id: str) -> AgentKey | None:
        """The custodial agent key bound to ``api_key_id`` (None: it has none) — what
        the dashboard signs a source or a retraction with, as ``/mcp`` does."""
        ...

    def feed_events(self, after: int) -> AsyncIterator[bytes]:
        """``GET /v1/feed/stream``'s bytes after LSN ``after``."""
        ...


__all__ = ["ANONYMOUS", "Host", "Principal"]
