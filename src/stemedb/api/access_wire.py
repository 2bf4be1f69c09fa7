"""Wire types of the access-control endpoints: API keys, rate-limit overrides, circuit
breakers, trust outcomes, and the per-agent view of ``GET /v1/agents/{agent_id}``."""

from __future__ import annotations

from typing import Literal

import msgspec

from stemedb.api.breakers import BreakerView
from stemedb.model.apikey import ApiKey
from stemedb.query.provenance import AgentInfo


class ApiKeyList(msgspec.Struct, kw_only=True):
    keys: list[ApiKey]


class CreateKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    role: str
    expires_at: float | None = None


class DeletedKey(msgspec.Struct, kw_only=True):
    id: str
    deleted: bool


class RateOverrideBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str | None = None
    api_key_id: str | None = None
    max_requests_per_min: int


class RateOverrideView(msgspec.Struct, kw_only=True):
    scope: Literal["agent", "key"]
    agent_id: str | None
    api_key_id: str | None
    max_requests_per_min: int
    created_at: float


class RateOverrideList(msgspec.Struct, kw_only=True):
    default_per_minute: int
    enabled: bool
    overrides: list[RateOverrideView]


class DeletedOverride(msgspec.Struct, kw_only=True):
    scope: Literal["agent", "key"]
    target: str
    deleted: bool


class TripBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str
    reason: str | None = None


class ResetBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str


class BreakerList(msgspec.Struct, kw_only=True):
    breakers: list[BreakerView]


class OutcomeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    accurate: bool


class QuotaView(msgspec.Struct, kw_only=True):
    tokens_per_hour: int
    remaining: int
    reset_at: float


class AgentDetail(AgentInfo, kw_only=True):
    """``GET /v1/agents/{agent_id}``: trust and counts, plus quota, rate limit, breaker."""

    quota: QuotaView | None
    rate_limit_per_minute: int | None
    breaker: BreakerView


__all__ = [
    "AgentDetail",
    "ApiKeyList",
    "BreakerList",
    "CreateKeyBody",
    "DeletedKey",
    "DeletedOverride",
    "OutcomeBody",
    "QuotaView",
    "RateOverrideBody",
    "RateOverrideList",
    "RateOverrideView",
    "ResetBody",
    "TripBody",
]
