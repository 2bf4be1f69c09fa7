"""``GET /health`` (liveness) and ``GET /ready`` (readiness)."""

from __future__ import annotations

from typing import Literal

import msgspec


class HealthResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: Literal["ok"]
    version: str
    uptime_seconds: float
    # only when true: API keys off and [api] allow_unauthenticated_network set
    unauthenticated_network: bool = False


class ReadyResponse(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
    applied_lsn: int
    # "unavailable" while writes are refused for now though reads are served (a full
    # disk, the write breaker open, the writer process restarting); not ready: too.
    writes: Literal["available", "unavailable"] = "available"


__all__ = ["HealthResponse", "ReadyResponse"]
