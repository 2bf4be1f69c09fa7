"""Write routes: assertions (one and batch), co-signatures, votes, supersessions.

Every write is decoded strictly, handed to the engine (validate → verify signatures
in the verify pool → group commit → durable and visible) and answered with
``{"id", "lsn", "status"}``: 201 when created, 200 when it already existed.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.guard.gate import admit_agent, note_items
from stemedb.api.http.bodies import DECODE_ERRORS, decode, read_body, read_json
from stemedb.api.http.bodies import body_error as decode_failure
from stemedb.api.http.errors import AGENT_KEY
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.api.state import ApiState
from stemedb.config import ApiConfig
from stemedb.errors import SerializationError, StemeError, ValidationError
from stemedb.model.kinds import AnyRecord
from stemedb.model.records import Assertion, CoSignature, Signature, Supersession, Vote
from stemedb.wire import (
    BatchBody,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    ErrorEnvelope,
    WriteResult,
)

ASSERTION_DECODER: Final = msgspec.json.Decoder(Assertion)
BATCH_DECODER: Final = msgspec.json.Decoder(BatchBody)
SIGNATURE_DECODER: Final = msgspec.json.Decoder(Signature)
VOTE_DECODER: Final = msgspec.json.Decoder(Vote)
SUPERSESSION_DECODER: Final = msgspec.json.Decoder(Supersession)

WRITE_ERRORS: Final = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    413: ErrorEnvelope,
    422: ErrorEnvelope,
    503: ErrorEnvelope,
}


def first_signer(record: AnyRecord) -> str | None:
    if isinstance(record, Vote | CoSignature):
        return record.signature.agent_id
    signatures = getattr(record, "signatures", ())
    return signatures[0].agent_id if signatures else None


def tag_agent(request: Request, record: AnyRecord) -> None:
    agent = first_signer(record)
    if isinstance(agent, str):
        request.scope[AGENT_KEY] = agent


def write_answer(result: WriteResult) -> Response:
    return json_response(result, 201 if result.status == "created" else 200)


async def commit(state: ApiState, request: Request, record: AnyRecord) -> Response:
    """Write one record durably and answer 201/200."""
    tag_agent(request, record)
    await admit_agent(request)
    result = await state.storage.write("write", lambda: state.writes.write(record))
    if isinstance(record, Assertion) and result.status == "created":
        state.metrics.assertions_ingested.inc()
        state.metrics.assertions_total.inc()
    return write_answer(result)


async def commit_body(request: Request, decoder: msgspec.json.Decoder[Any]) -> Response:
    """Decode the body as one record (``decoder``), write it durably and answer 201/200."""
    state = state_of(request)
    record = await read_json(request, decoder, state.config.api.max_body_bytes)
    return await commit(state, request, record)


def _prefixed(error: StemeError, prefix: str) -> ErrorBody:
    details = dict(error.details)
    field = details.get("field")
    if isinstance(field, str):
        details["field"] = f"{prefix}.{field}"
    return ErrorBody(
        code=error.code,
        type=error.type_name,
        message=f"{prefix}: {error.message}",
        details=details,
        retryable=error.retryable,
    )


async def post_assert(request: Request) -> Response:
    return await commit_body(request, ASSERTION_DECODER)


async def post_assert_batch(request: Request) -> Response:
    state = state_of(request)
    max_batch = state.config.api.max_batch
    body = await read_body(request, state.config.api.max_body_bytes)
    if not body:
        raise SerializationError(
            "the request body is empty; send JSON",
            code="empty_body",
            details={"field": "body"},
        )
    batch = decode(body, BATCH_DECODER)
    count = len(batch.assertions)
    if count == 0:
        raise ValidationError(
            "assertions", "empty", "the batch holds no assertions", code="empty_batch"
        )
    if count > max_batch:
        raise ValidationError(
            "assertions",
            "too_many",
            f"the batch holds {count} assertions; api.max_batch is {max_batch}",
            code="batch_too_large",
        )
    records: list[Assertion] = []
    slots: list[int | StemeError] = []
    for index, raw in enumerate(batch.assertions):
        try:
            records.append(ASSERTION_DECODER.decode(raw))
            slots.append(len(records) - 1)
        except DECODE_ERRORS as exc:
            slots.append(decode_failure(exc, f"assertions[{index}]"))
    if records:
        tag_agent(request, records[0])
        await admit_agent(request, count)
    engine = state.engine
    outcomes = (
        await state.storage.write("write_batch", lambda: engine.write_many_async(records))
        if records
        else []
    )
    items: list[BatchItem] = []
    created = exists = failed = 0
    for index, slot in enumerate(slots):
        outcome = outcomes[slot] if isinstance(slot, int) else slot
        if isinstance(outcome, StemeError):
            failed += 1
            prefix = f"assertions[{index}]"
            body_error = (
                _prefixed(outcome, prefix)
                if isinstance(slot, int)
                else ErrorBody(
                    code=outcome.code,
                    type=outcome.type_name,
                    message=outcome.message,
                    details=outcome.details,
                    retryable=outcome.retryable,
                )
            )
            items.append(BatchItem(index=index, status="error", error=body_error))
        else:
            if outcome.status == "created":
                created += 1
            else:
                exists += 1
            items.append(
                BatchItem(index=index, status=outcome.status, id=outcome.id, lsn=outcome.lsn)
            )
    note_items(request, count, failed)
    if created:
        state.metrics.assertions_ingested.inc(created)
        state.metrics.assertions_total.inc(created)
    return json_response(
        BatchResponse(results=items, created=created, exists=exists, failed=failed), 207
    )


async def post_signature(request: Request) -> Response:
    state = state_of(request)
    sig = await read_json(request, SIGNATURE_DECODER, state.config.api.max_body_bytes)
    record = CoSignature(assertion_id=request.path_params["id"], signature=sig)
    return await commit(state, request, record)


async def post_vote(request: Request) -> Response:
    return await commit_body(request, VOTE_DECODER)


async def post_supersede(request: Request) -> Response:
    return await commit_body(request, SUPERSESSION_DECODER)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    ok = {201: WriteResult, 200: WriteResult, **WRITE_ERRORS}
    return [
        api_route(
            "/v1/assert",
            post_assert,
            ["POST"],
            EndpointDoc(
                summary="Store one signed assertion (201 created, 200 exists).",
                tag="writes",
                body=Assertion,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/assert/batch",
            post_assert_batch,
            ["POST"],
            EndpointDoc(
                summary="Store up to api.max_batch assertions in one group commit; per-item"
                " results (207 Multi-Status).",
                tag="writes",
                body=BatchRequest,
                responses={207: BatchResponse, **WRITE_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/assertions/{id}/signatures",
            post_signature,
            ["POST"],
            EndpointDoc(
                summary="Co-sign an existing assertion (the body is one Signature over its id).",
                tag="writes",
                body=Signature,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/vote",
            post_vote,
            ["POST"],
            EndpointDoc(
                summary="Store a signed vote on an assertion.",
                tag="writes",
                body=Vote,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/supersede",
            post_supersede,
            ["POST"],
            EndpointDoc(
                summary="Store a signed supersession (new replaces old; reason required).",
                tag="writes",
                body=Supersession,
                responses=ok,
            ),
            timeout_seconds=timeout,
        ),
    ]
