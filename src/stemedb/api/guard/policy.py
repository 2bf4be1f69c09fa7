"""Which guard a route gets (``Policy``), from its path and methods alone:

- public, never guarded: ``/`` (the index), ``/health``, ``/v1/health``, ``/ready``, ``/metrics``,
  ``/openapi.json``, ``/docs``;
- ``/v1/admin/*``: role ``admin`` whenever ``[auth] enabled`` (whatever
  ``require_for_reads`` says);
- ``GET`` and ``POST /v1/query``: role ``reader`` when ``require_for_reads`` (else
  anonymous, but a key that is sent must be valid); other methods: role ``writer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from starlette.routing import Route

from stemedb.api.guard.quota import Cost, cost_of

PUBLIC_PATHS: Final = frozenset(
    {"/", "/health", "/v1/health", "/ready", "/metrics", "/openapi.json", "/docs"}
)
ADMIN_PREFIX: Final = "/v1/admin/"
READ_METHODS: Final = frozenset({"GET", "HEAD"})
READ_POST_PATHS: Final = frozenset({"/v1/query"})  # POST, but a read (many queries)


class Policy(NamedTuple):
    path: str
    method: str
    need: str  # the least role: reader, writer or admin
    write: bool
    admin: bool
    endpoint_limit: int | None
    cost: Cost


def route_policy(route: Route, endpoint_limits: Mapping[str, int]) -> Policy | None:
    """The route's policy; None for a public route. ``endpoint_limits``: the
    ``[rate_limit.endpoints]`` limits by route template."""
    path = route.path
    methods = route.methods or {"GET"}
    if path in PUBLIC_PATHS:
        return None
    write = not methods <= READ_METHODS and path not in READ_POST_PATHS
    method = next((m for m in sorted(methods) if m != "HEAD"), "GET")
    admin = path.startswith(ADMIN_PREFIX)
    need = "admin" if admin else ("writer" if write else "reader")
    return Policy(
        path=path,
        method=method,
        need=need,
        write=write,
        admin=admin,
        endpoint_limit=endpoint_limits.get(path),
        cost=cost_of(method, path, write=write),
    )


__all__ = ["ADMIN_PREFIX", "PUBLIC_PATHS", "Policy", "route_policy"]
