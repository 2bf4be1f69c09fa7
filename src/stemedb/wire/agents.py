"""Per-agent reads: ``GET /v1/agents/{agent_id}`` (trust, counts, quota, rate limit,
circuit breaker)."""

from __future__ import annotations

from typing import Literal

import msgspec

BreakerStateName = Literal["closed", "open", "half_open"]


class TrustRow(msgspec.Struct, frozen=True):
    agent_id: str
    score: float
    updated_at: float
    outcomes: int


class AgentInfo(msgspec.Struct, kw_only=True):
    agent_id: str
    trust: float
    trust_record: TrustRow | None
    counts: dict[str, int]


class QuotaView(msgspec.Struct, kw_only=True):
    tokens_per_hour: int
    remaining: int
    reset_at: float


class BreakerView(msgspec.Struct, kw_only=True):
    agent_id: str
    state: BreakerStateName
    consecutive_failures: int
    opened_at: float | None
    retry_at: float | None
    reason: str | None
    tripped_by: Literal["failures", "admin"] | None


class AgentDetail(AgentInfo, kw_only=True):
    """``GET /v1/agents/{agent_id}``: trust and counts, plus quota, rate limit, breaker."""

    quota: QuotaView | None
    rate_limit_per_minute: int | None
    breaker: BreakerView


__all__ = ["AgentDetail", "AgentInfo", "BreakerStateName", "BreakerView", "QuotaView", "TrustRow"]
