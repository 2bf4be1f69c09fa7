"""``GET /health`` (liveness) and ``GET /ready`` (readiness)."""

from __future__ import annotations

from typing import Literal

import msgspec


class HealthResponse(msgspec.Struct, kw_only=True):
    status: Literal["ok"]
    version: str
    uptime_seconds: float


class ReadyResponse(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
    applied_lsn: int


__all__ = ["HealthResponse", "ReadyResponse"]
