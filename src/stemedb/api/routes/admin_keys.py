"""Admin routes for API keys and trust outcomes (API.md "Admin").

- ``GET /v1/admin/api-keys``: ``{"keys": [...]}`` — never a secret or its hash;
- ``POST /v1/admin/api-keys`` ``{"name", "role", "expires_at"?}`` → 201 with the
  secret (``stm_…``), the only time it is shown (``Cache-Control: no-store``);
- ``POST /v1/admin/api-keys/{id}/disable``, ``DELETE /v1/admin/api-keys/{id}``: take
  effect on the next request; the last usable admin key cannot be disabled or deleted;
- ``POST /v1/admin/api-keys/{id}/confirm``: accept a key created while API keys were
  off (``"minted_open": true``, refused until then); 409 ``api_keys_off`` while they
  still are;
- ``POST /v1/admin/trust/{agent_id}/outcome`` ``{"accurate": bool}``: a TrustOutcome
  through the engine (WAL, then the agent's trust score).

The guard (``api.guard.policy``) requires the admin role for all of them when auth is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.guard.access import AccessControl
from stemedb.api.http.bodies import read_json
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.api.routes.writes import commit
from stemedb.config import ApiConfig
from stemedb.errors import ValidationError
from stemedb.model.apikey import ApiKey, CreatedApiKey
from stemedb.model.records import TrustOutcome
from stemedb.model.signing import is_hex64
from stemedb.wire import (
    ApiKeyList,
    CreateKeyBody,
    DeletedKey,
    ErrorEnvelope,
    OutcomeBody,
    WriteResult,
)

T = TypeVar("T")

CREATE_DECODER: Final = msgspec.json.Decoder(CreateKeyBody)
OUTCOME_DECODER: Final = msgspec.json.Decoder(OutcomeBody)
ADMIN_ERRORS: Final = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    403: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    429: ErrorEnvelope,
}
NO_STORE: Final = {"Cache-Control": "no-store"}


async def list_keys(request: Request) -> Response:
    QueryString(request).finish()
    access = state_of(request).access
    access.refresh()
    return json_response(ApiKeyList(keys=access.keys.list()), headers=NO_STORE)


async def change(access: AccessControl, fn: Callable[..., T], *args: object) -> T:
    """A change to the keys, off the loop; then the other HTTP processes reload."""
    access.refresh()
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, fn, *args)
    finally:
        access.changed()


async def create_key(request: Request) -> Response:
    state = state_of(request)
    access = state.access
    body = await read_json(request, CREATE_DECODER, state.config.api.max_body_bytes)
    made = await change(access, access.keys.create, body.name, body.role, body.expires_at)
    return json_response(made, 201, headers=NO_STORE)


async def disable_key(request: Request) -> Response:
    access = state_of(request).access
    key = await change(access, access.keys.disable, str(request.path_params["id"]))
    return json_response(key, headers=NO_STORE)


async def confirm_key(request: Request) -> Response:
    access = state_of(request).access
    key = await change(access, access.keys.confirm, str(request.path_params["id"]))
    return json_response(key, headers=NO_STORE)


async def delete_key(request: Request) -> Response:
    access = state_of(request).access
    key = await change(access, access.keys.delete, str(request.path_params["id"]))
    return json_response(DeletedKey(id=key.id, deleted=True), headers=NO_STORE)


async def post_outcome(request: Request) -> Response:
    state = state_of(request)
    agent_id = str(request.path_params["agent_id"])
    if not is_hex64(agent_id):
        raise ValidationError(
            "agent_id", "hex_format", "agent_id must be 64 lowercase hex characters"
        )
    body = await read_json(request, OUTCOME_DECODER, state.config.api.max_body_bytes)
    record = TrustOutcome(
        agent_id=agent_id, accurate=body.accurate, timestamp=int(state.engine.clock.time())
    )
    return await commit(state, request, record)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    return [
        api_route(
            "/v1/admin/api-keys",
            list_keys,
            ["GET"],
            EndpointDoc(
                summary="Every API key (never its secret).",
                tag="admin",
                responses={200: ApiKeyList, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/api-keys",
            create_key,
            ["POST"],
            EndpointDoc(
                summary="Create an API key; the answer carries its secret, shown this once.",
                tag="admin",
                body=CreateKeyBody,
                responses={201: CreatedApiKey, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/api-keys/{id}/disable",
            disable_key,
            ["POST"],
            EndpointDoc(
                summary="Disable an API key (refused from the next request on).",
                tag="admin",
                responses={200: ApiKey, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/api-keys/{id}/confirm",
            confirm_key,
            ["POST"],
            EndpointDoc(
                summary="Accept a key created while API keys were off (refused until then).",
                tag="admin",
                responses={200: ApiKey, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/api-keys/{id}",
            delete_key,
            ["DELETE"],
            EndpointDoc(
                summary="Delete an API key.",
                tag="admin",
                responses={200: DeletedKey, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/trust/{agent_id}/outcome",
            post_outcome,
            ["POST"],
            EndpointDoc(
                summary="Record whether an agent's claim turned out accurate (moves its trust).",
                tag="admin",
                body=OutcomeBody,
                responses={201: WriteResult, 200: WriteResult, **ADMIN_ERRORS, 503: ErrorEnvelope},
            ),
            timeout_seconds=timeout,
        ),
    ]
