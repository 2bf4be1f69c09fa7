"""Epoch and source registry routes: register, list, get, retract."""

from __future__ import annotations

from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.http.bodies import read_json
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.api.routes.writes import WRITE_ERRORS, commit, commit_body
from stemedb.config import ApiConfig
from stemedb.errors import NotFoundError, ValidationError
from stemedb.model.records import Epoch, Retraction, Source
from stemedb.model.signing import is_hex64
from stemedb.query.impact import retraction_impact
from stemedb.wire import (
    EpochList,
    EpochRow,
    ErrorEnvelope,
    RetractBody,
    SourceList,
    SourceRow,
    WriteResult,
)

EPOCH_DECODER: Final = msgspec.json.Decoder(Epoch)
SOURCE_DECODER: Final = msgspec.json.Decoder(Source)
RETRACT_DECODER: Final = msgspec.json.Decoder(RetractBody)
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000
NOT_FOUND: Final = {400: ErrorEnvelope, 404: ErrorEnvelope}


def _hex_path(request: Request, name: str, field: str) -> str:
    value = str(request.path_params[name])
    if not is_hex64(value):
        raise ValidationError(field, "hex_format", f"{field} must be 64 lowercase hex characters")
    return value


async def post_epoch(request: Request) -> Response:
    return await commit_body(request, EPOCH_DECODER)


async def get_epochs(request: Request) -> Response:
    state = state_of(request)
    QueryString(request).finish()
    epochs = await state.offload(state.service.provenance.epochs)
    return json_response(EpochList(epochs))


async def get_epoch(request: Request) -> Response:
    state = state_of(request)
    epoch_id = _hex_path(request, "id", "id")
    row = await state.offload(state.service.provenance.epoch, epoch_id)
    if row is None:
        raise NotFoundError(f"epoch {epoch_id} not found", code="epoch_not_found")
    return json_response(row)


async def post_source(request: Request) -> Response:
    return await commit_body(request, SOURCE_DECODER)


async def get_sources(request: Request) -> Response:
    state = state_of(request)
    qs = QueryString(request)
    cursor = qs.text("cursor")
    limit = qs.integer("limit", DEFAULT_PAGE)
    qs.finish()
    if cursor is not None and not is_hex64(cursor):
        raise ValidationError(
            "cursor", "is not a cursor returned by this listing", code="bad_cursor"
        )
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            "limit", f"must be between 1 and {MAX_PAGE}", code="limit_out_of_range"
        )
    rows = await state.offload(state.service.provenance.sources, after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1].source_hash if more and rows else None
    return json_response(SourceList(sources=rows, next_cursor=next_cursor))


async def get_source(request: Request) -> Response:
    state = state_of(request)
    source_hash = _hex_path(request, "hash", "source_hash")
    row = await state.offload(state.service.provenance.source, source_hash)
    if row is None:
        raise NotFoundError(f"source {source_hash} not found", code="source_not_found")
    return json_response(row)


async def post_retract(request: Request) -> Response:
    state = state_of(request)
    if "dry_run" in request.query_params:
        qs = QueryString(request)
        if qs.flag("dry_run"):
            return await _retraction_impact(request, qs)
        qs.finish()
    body = await read_json(request, RETRACT_DECODER, state.config.api.max_body_bytes)
    record = Retraction(
        source_hash=str(request.path_params["hash"]),
        reason=body.reason,
        timestamp=body.timestamp,
        signatures=body.signatures,
    )
    return await commit(state, request, record)


async def _retraction_impact(request: Request, qs: QueryString) -> Response:
    """``?dry_run=true``: the claims the cascade would exclude; nothing is written (and
    no body is read: a preview needs no signature)."""
    state = state_of(request)
    limit = qs.integer("limit", DEFAULT_PAGE)
    qs.finish()
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            "limit", f"must be between 1 and {MAX_PAGE}", code="limit_out_of_range"
        )
    source_hash = _hex_path(request, "hash", "source_hash")
    impact = await state.offload(retraction_impact, state.service.store, source_hash, limit)
    return json_response(impact)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    ok = {201: WriteResult, 200: WriteResult, **WRITE_ERRORS}
    page_params = (
        Param("cursor", str, "next_cursor of the previous page"),
        Param("limit", int, f"page size, 1..{MAX_PAGE} (default {DEFAULT_PAGE})"),
    )
    return [
        api_route(
            "/v1/epoch",
            post_epoch,
            ["POST"],
            EndpointDoc(
                summary="Register a signed epoch (a named paradigm).",
                tag="registry",
                body=Epoch,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/epochs",
            get_epochs,
            ["GET"],
            EndpointDoc(
                summary="Every epoch, in LSN order.",
                tag="registry",
                responses={200: EpochList},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/epochs/{id}",
            get_epoch,
            ["GET"],
            EndpointDoc(
                summary="One epoch.",
                tag="registry",
                responses={200: EpochRow, **NOT_FOUND},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/sources",
            post_source,
            ["POST"],
            EndpointDoc(
                summary="Register a signed source (content optional, must hash to source_hash).",
                tag="registry",
                body=Source,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/sources",
            get_sources,
            ["GET"],
            EndpointDoc(
                summary="Registered sources without content, by source_hash, cursor-paged.",
                tag="registry",
                params=page_params,
                responses={200: SourceList, 400: ErrorEnvelope},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/sources/{hash}",
            get_source,
            ["GET"],
            EndpointDoc(
                summary="One source with its content.",
                tag="registry",
                responses={200: SourceRow, **NOT_FOUND},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/sources/{hash}/retract",
            post_retract,
            ["POST"],
            EndpointDoc(
                summary="Retract a source: every assertion citing it is flagged and excluded."
                " With dry_run=true: the claims the cascade would exclude, nothing written.",
                tag="registry",
                body=RetractBody,
                # ``?dry_run=true&limit=`` answers a RetractionImpact instead (API.md,
                # docs/reference/api.md): not in the generated document, which cannot
                # put two untagged structs under one status
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
    ]
