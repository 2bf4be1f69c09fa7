"""Admin routes for custodial agent keys (API.md "Admin", ``docs/reference/mcp.md``).

- ``POST /v1/admin/custodial-keys`` ``{"api_key_id"}`` → 201, a fresh agent key bound
  to that API key; the answer names its ``agent_id`` (the public half) — the private
  half never leaves ``<data_dir>/custodial.sqlite``. 409 if the API key has a usable one.
- ``GET /v1/admin/custodial-keys``: every custodial key, revoked ones too.
- ``DELETE /v1/admin/custodial-keys/{agent_id}``: revoke; the private half is erased
  at once, the record of the binding stays (traces keep naming the API key).

What the holder of the API key writes through ``/mcp`` is signed with its custodial
key (``api.mcp``). The guard requires the admin role for all of them when auth is on.
"""

from __future__ import annotations

from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.http.bodies import read_json
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.routes.admin_keys import ADMIN_ERRORS, NO_STORE
from stemedb.api.routes.context import state_of
from stemedb.api.state import ApiState
from stemedb.config import ApiConfig
from stemedb.errors import NotFoundError, ValidationError
from stemedb.model.signing import is_hex64
from stemedb.store.custodial_keys import CustodialKey
from stemedb.wire.custodial import CreateCustodialKeyBody, CustodialKeyList, CustodialKeyView

CREATE_DECODER: Final = msgspec.json.Decoder(CreateCustodialKeyBody)


def custodial_views(state: ApiState, keys: list[CustodialKey]) -> list[CustodialKeyView]:
    """The wire view of ``keys``, with the name of each one's API key."""
    names = {key.id: key.name for key in state.access.keys.list()}
    return [
        CustodialKeyView(
            agent_id=key.agent_id,
            api_key_id=key.api_key_id,
            api_key_name=names.get(key.api_key_id),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            usable=key.revoked_at is None,
        )
        for key in keys
    ]


async def create_custodial_key(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request, CREATE_DECODER, state.config.api.max_body_bytes)
    state.access.refresh()
    state.access.keys.get(body.api_key_id)  # 404 for an unknown API key
    made = await state.offload_unguarded(
        state.custodial.create, body.api_key_id, state.engine.clock.time()
    )
    return json_response(custodial_views(state, [made])[0], 201, headers=NO_STORE)


async def list_custodial_keys(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    state.access.refresh()
    keys = await state.offload_unguarded(state.custodial.all)
    return json_response(CustodialKeyList(keys=custodial_views(state, keys)), headers=NO_STORE)


async def revoke_custodial_key(request: Request) -> Response:
    state = state_of(request)
    agent_id = str(request.path_params["agent_id"])
    if not is_hex64(agent_id):
        raise ValidationError(
            "agent_id", "hex_format", "agent_id must be 64 lowercase hex characters"
        )
    revoked = await state.offload_unguarded(
        state.custodial.revoke, agent_id, state.engine.clock.time()
    )
    if revoked is None:
        raise NotFoundError(f"no custodial key {agent_id}", code="custodial_key_not_found")
    return json_response(custodial_views(state, [revoked])[0], headers=NO_STORE)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    return [
        api_route(
            "/v1/admin/custodial-keys",
            create_custodial_key,
            ["POST"],
            EndpointDoc(
                summary="Create a custodial agent key bound to an API key (its public half"
                " is the answer); what that API key writes through /mcp is signed with it.",
                tag="admin",
                body=CreateCustodialKeyBody,
                responses={201: CustodialKeyView, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/custodial-keys",
            list_custodial_keys,
            ["GET"],
            EndpointDoc(
                summary="Every custodial key, revoked ones too (never a private half).",
                tag="admin",
                responses={200: CustodialKeyList, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/custodial-keys/{agent_id}",
            revoke_custodial_key,
            ["DELETE"],
            EndpointDoc(
                summary="Revoke a custodial key: its private half is erased at once.",
                tag="admin",
                responses={200: CustodialKeyView, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
    ]


__all__ = ["custodial_views", "routes"]
