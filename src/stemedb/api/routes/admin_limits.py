"""Admin routes for rate-limit overrides and per-agent circuit breakers (API.md "Admin").

- ``POST /v1/admin/rate-limit`` ``{"agent_id" or "api_key_id", "max_requests_per_min"}``
  sets the per-agent or per-key limit (kept in ``keys.sqlite``, so it survives restarts),
  enforced at once whether or not ``rate_limit.enabled`` is on; the answer says the
  limit that now holds (``effective_max_requests_per_min`` per ``window_seconds``);
  ``GET`` lists the overrides; ``DELETE /v1/admin/rate-limit/{id}`` removes the override
  of that agent id (64 hex) or API key id.
- ``POST /v1/admin/circuit-breaker/trip`` ``{"agent_id", "reason"?}`` opens an agent's
  breaker until it is reset; ``POST /v1/admin/circuit-breaker/reset`` ``{"agent_id"}``
  closes it; ``GET /v1/admin/circuit-breakers`` lists the breakers that are not closed or
  have recent failures.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api import node_views
from stemedb.api.guard.ratelimit import RateLimits
from stemedb.api.http.bodies import read_json
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.routes.admin_keys import ADMIN_ERRORS
from stemedb.api.routes.context import state_of
from stemedb.config import ApiConfig
from stemedb.errors import NotFoundError, ValidationError
from stemedb.model.signing import is_hex64
from stemedb.store.keys import OverrideScope, RateOverride
from stemedb.wire import (
    BreakerList,
    BreakerView,
    DeletedOverride,
    RateOverrideBody,
    RateOverrideList,
    RateOverrideView,
    ResetBody,
    TripBody,
)

OVERRIDE_DECODER: Final = msgspec.json.Decoder(RateOverrideBody)
TRIP_DECODER: Final = msgspec.json.Decoder(TripBody)
RESET_DECODER: Final = msgspec.json.Decoder(ResetBody)
MAX_REQUESTS_PER_MIN: Final = 10_000_000
REASON_MAX_CHARS: Final = 512
KEY_ID_MAX_CHARS: Final = 64


def view(override: RateOverride, rates: RateLimits) -> RateOverrideView:
    agent = override.target if override.scope == "agent" else None
    key = override.target if override.scope == "key" else None
    limit, window = override.max_requests_per_min, rates.window_seconds
    name = "agent" if agent is not None else "API key"
    others = (
        "other agents and keys are limited to"
        f" {rates.default_per_minute} (rate_limit.enabled is true)"
        if rates.enabled
        else "no one else is limited (rate_limit.enabled is false)"
    )
    return RateOverrideView(
        scope=override.scope,
        agent_id=agent,
        api_key_id=key,
        max_requests_per_min=limit,
        created_at=override.created_at,
        enforced=True,
        effective_max_requests_per_min=limit,
        window_seconds=window,
        message=f"{name} {override.target} is limited to {limit} requests per {window} s"
        f" from now on; {others}",
    )


def checked_override(body: RateOverrideBody) -> tuple[OverrideScope, str]:
    if (body.agent_id is None) == (body.api_key_id is None):
        raise ValidationError("agent_id", "one_of", "give exactly one of agent_id and api_key_id")
    if not 1 <= body.max_requests_per_min <= MAX_REQUESTS_PER_MIN:
        raise ValidationError(
            "max_requests_per_min",
            "range",
            f"max_requests_per_min must be between 1 and {MAX_REQUESTS_PER_MIN}",
        )
    if body.agent_id is not None:
        if not is_hex64(body.agent_id):
            raise ValidationError("agent_id", "hex_format", "agent_id must be 64 lowercase hex")
        return "agent", body.agent_id
    assert body.api_key_id is not None
    if not 1 <= len(body.api_key_id) <= KEY_ID_MAX_CHARS or not body.api_key_id.isalnum():
        raise ValidationError("api_key_id", "format", "api_key_id is not a key id")
    return "key", body.api_key_id


def checked_agent(agent_id: str) -> str:
    if not is_hex64(agent_id):
        raise ValidationError("agent_id", "hex_format", "agent_id must be 64 lowercase hex")
    return agent_id


async def list_overrides(request: Request) -> Response:
    QueryString(request).finish()
    access = state_of(request).access
    rates = access.rates
    access.refresh()
    loop = asyncio.get_running_loop()
    rows = await loop.run_in_executor(None, access.keys.store.overrides)
    return json_response(
        RateOverrideList(
            default_per_minute=rates.default_per_minute,
            enabled=rates.enabled,
            overrides=[view(row, rates) for row in rows],
        )
    )


async def set_override(request: Request) -> Response:
    state = state_of(request)
    access = state.access
    body = await read_json(request, OVERRIDE_DECODER, state.config.api.max_body_bytes)
    scope, target = checked_override(body)
    row = RateOverride(
        scope=scope,
        target=target,
        max_requests_per_min=body.max_requests_per_min,
        created_at=time.time(),
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, access.keys.store.put_override, row)
    access.rates.set_override(scope, target, row.max_requests_per_min)
    access.changed()
    return json_response(view(row, access.rates))


async def delete_override(request: Request) -> Response:
    access = state_of(request).access
    rates = access.rates
    target = str(request.path_params["agent_id"])
    scope: OverrideScope = "agent" if is_hex64(target) else "key"
    access.refresh()
    if (scope, target) not in rates.overrides:
        raise NotFoundError(f"no rate-limit override for {target}", code="override_not_found")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, access.keys.store.delete_override, scope, target)
    rates.remove_override(scope, target)
    access.changed()
    return json_response(DeletedOverride(scope=scope, target=target, deleted=True))


async def trip(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request, TRIP_DECODER, state.config.api.max_body_bytes)
    agent = checked_agent(body.agent_id)
    if body.reason is not None and len(body.reason) > REASON_MAX_CHARS:
        raise ValidationError(
            "reason", "too_long", f"reason is at most {REASON_MAX_CHARS} characters"
        )
    return json_response(await node_views.trip(state, agent, body.reason))


async def reset(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request, RESET_DECODER, state.config.api.max_body_bytes)
    return json_response(await node_views.reset(state, checked_agent(body.agent_id)))


async def list_breakers(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    return json_response(BreakerList(breakers=await node_views.breakers(state)))


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    return [
        api_route(
            "/v1/admin/rate-limit",
            list_overrides,
            ["GET"],
            EndpointDoc(
                summary="Rate-limit overrides per agent and per API key.",
                tag="admin",
                responses={200: RateOverrideList, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/rate-limit",
            set_override,
            ["POST"],
            EndpointDoc(
                summary="Set the requests-per-minute limit of one agent or API key.",
                tag="admin",
                body=RateOverrideBody,
                responses={200: RateOverrideView, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/rate-limit/{agent_id}",
            delete_override,
            ["DELETE"],
            EndpointDoc(
                summary="Remove the override of an agent id (64 hex) or API key id.",
                tag="admin",
                responses={200: DeletedOverride, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/circuit-breaker/trip",
            trip,
            ["POST"],
            EndpointDoc(
                summary="Open an agent's circuit breaker until an admin resets it.",
                tag="admin",
                body=TripBody,
                responses={200: BreakerView, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/circuit-breaker/reset",
            reset,
            ["POST"],
            EndpointDoc(
                summary="Close an agent's circuit breaker.",
                tag="admin",
                body=ResetBody,
                responses={200: BreakerView, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/circuit-breakers",
            list_breakers,
            ["GET"],
            EndpointDoc(
                summary="Per-agent circuit breakers that are open, half-open or counting failures.",
                tag="admin",
                responses={200: BreakerList, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
    ]
