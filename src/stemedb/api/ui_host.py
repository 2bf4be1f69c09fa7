"""The dashboard's ``Host`` (``ui.host``) over this app's ``ApiState``.

A page is admitted exactly as its JSON twin's route is by the guard: the twin's
``Policy`` (``api.guard.policy``, from the route table), the same key check
(``KeyRing.authenticate``: unknown, disabled, expired or deleted keys are refused at
once) and the same role rule (``role_allows``). Reads run on the API's read pool
through its storage guard; the live feed is the SSE generator of ``/v1/feed/stream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TypeVar

from starlette.routing import BaseRoute, Route

from stemedb.api.guard.policy import Policy
from stemedb.api.routes.health import readiness
from stemedb.api.state import ApiState
from stemedb.api.streaming.sse import feed_events
from stemedb.config import Config
from stemedb.errors import AuthenticationError, AuthorizationError
from stemedb.model.apikey import role_allows
from stemedb.model.signing import AgentKey
from stemedb.query.service import QueryService
from stemedb.ui.host import ANONYMOUS, Principal
from stemedb.wire import FeedPage

T = TypeVar("T")


class ApiHost:
    """``ui.host.Host`` for one app (``routes``: the app's route table, read lazily)."""

    def __init__(self, state: ApiState, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.state = state
        self._routes = routes
        self._policies: dict[tuple[str, str], Policy | None] | None = None

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def version(self) -> str:
        return self.state.version

    @property
    def data_dir(self) -> Path:
        return self.state.config.data_dir

    @property
    def service(self) -> QueryService:
        return self.state.service

    async def offload(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await self.state.offload(fn, *args, **kwargs)

    def uptime_seconds(self) -> float:
        return self.state.uptime_seconds()

    async def readiness(self) -> tuple[list[str], int]:
        if self.state.opened_engine is None or not self.state.accepting:
            return readiness(self.state)
        return await self.state.offload_unguarded(readiness, self.state)

    def _policy(self, path: str, method: str) -> Policy | None:
        if self._policies is None:
            access = self.state.access
            self._policies = {
                (route.path, m): access.policy(route)
                for route in self._routes()
                if isinstance(route, Route)
                for m in route.methods or ()
            }
        return self._policies.get((path, method))

    def authenticate(self, secret: str) -> Principal:
        access = self.state.access
        access.refresh()
        key = access.keys.authenticate(secret)
        return Principal(key_id=key.id, name=key.name, role=key.role)

    def need(self, path: str, method: str) -> str | None:
        policy = self._policy(path, method)
        return None if policy is None else policy.need

    async def admit(self, secret: str | None, path: str, method: str) -> Principal:
        access = self.state.access
        access.refresh()
        if access.watch is not None:  # cluster mode: the cluster's keys
            await access.refresh_shared()
        policy = self._policy(path, method)
        need = "reader" if policy is None else policy.need
        if not access.auth_enabled:
            return ANONYMOUS
        if secret is None and need == "reader" and not access.require_for_reads:
            return ANONYMOUS
        try:
            key = access.keys.authenticate(secret)
        except AuthenticationError:
            if secret is not None and need == "reader" and not access.require_for_reads:
                return ANONYMOUS  # a stale session on an open page: shown signed out
            raise
        if not role_allows(key.role, need):
            raise AuthorizationError(
                f"this page needs the {need} role (like {method} {path}); the API key has"
                f" {key.role}",
                code="insufficient_role",
                details={"required_role": need, "role": key.role},
            )
        return Principal(key_id=key.id, name=key.name, role=key.role)

    async def signer(self, api_key_id: str) -> AgentKey | None:
        return await self.state.offload_unguarded(self.state.custodial.signer, api_key_id)

    def feed_events(self, after: int) -> AsyncIterator[bytes]:
        state = self.state

        async def read_page(cursor: int, limit: int) -> FeedPage:
            return await state.offload(state.service.provenance.feed, cursor, limit)

        return feed_events(state.feed, read_page, after)


__all__ = ["ApiHost"]
