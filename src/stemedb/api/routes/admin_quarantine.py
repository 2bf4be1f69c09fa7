"""Admin routes of the quarantine (API.md "Admin"; ADR 0023, docs/design/defence.md).

- ``GET /v1/admin/quarantine`` ``reason``, ``agent_id``, ``status`` (``pending`` by
  default, ``approved``, ``rejected`` or ``all``), ``limit`` (1..1000, default 100),
  ``cursor`` → ``{"items": [...], "next_cursor"}`` in the order of the decisions;
- ``POST /v1/admin/quarantine/{id}/approve``: the assertion becomes visible to lenses and
  views from the review's LSN on; ``/reject``: it stays out of them for good (still
  stored, still readable with ``include_quarantined=true``). Each review is a
  ``QuarantineReview`` record in the WAL naming the admin's API key id (the audit
  trail, replayed by a rebuild) and a log line; a second review answers 409.

The guard (``api.guard.policy``) requires the admin role for ``/v1/admin/*``.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.guard.gate import GATE_KEY, Gate
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.routes.admin_keys import ADMIN_ERRORS
from stemedb.api.routes.context import state_of
from stemedb.config import ApiConfig
from stemedb.errors import ConflictError, NotFoundError, ValidationError
from stemedb.model.records import QUARANTINE_REASONS, QuarantineReview
from stemedb.model.signing import is_hex64
from stemedb.store.rows import QuarantineRow
from stemedb.wire import QuarantineItem, QuarantineList, QuarantineReviewed

log = logging.getLogger("stemedb.api")

STATUSES: Final = ("pending", "approved", "rejected", "all")
MAX_LIMIT: Final = 1000


def quarantine_item(row: QuarantineRow) -> QuarantineItem:
    return QuarantineItem(
        id=row.id,
        reason=row.reason,
        agent_id=row.agent_id,
        subject=row.subject,
        predicate=row.predicate,
        quarantined_at=row.quarantined_at,
        status=row.status,  # type: ignore[arg-type]
        detail=row.detail,
        lsn=row.lsn,
        reviewed_by=row.reviewer,
        review_lsn=row.review_lsn,
    )


def _hex_param(qs: QueryString, name: str) -> str | None:
    value = qs.text(name)
    if value is not None and not is_hex64(value):
        raise ValidationError(name, "hex_format", f"{name} must be 64 lowercase hex characters")
    return value


async def list_quarantine(request: Request) -> Response:
    state = state_of(request)
    qs = QueryString(request)
    reason = qs.text("reason")
    if reason is not None and reason not in QUARANTINE_REASONS:
        raise ValidationError("reason", "enum", f"reason must be one of {QUARANTINE_REASONS}")
    status = qs.text("status") or "pending"
    if status not in STATUSES:
        raise ValidationError("status", "enum", f"status must be one of {STATUSES}")
    agent_id = _hex_param(qs, "agent_id")
    limit = qs.integer("limit", 100)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", "range", f"limit must be 1..{MAX_LIMIT}")
    cursor = qs.text("cursor")
    if cursor is not None and not cursor.isdigit():
        raise ValidationError(
            "cursor", "is not a cursor returned by this listing", code="bad_cursor"
        )
    qs.finish()
    store = state.engine.store
    rows = await state.offload(
        store.quarantined,
        status=None if status == "all" else status,
        reason=reason,
        agent_id=agent_id,
        after=int(cursor or 0),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = str(rows[-1].lsn) if more and rows else None
    return json_response(
        QuarantineList(items=[quarantine_item(r) for r in rows], next_cursor=next_cursor)
    )


def _reviewer(request: Request) -> str:
    """The API key id of the admin (``-`` while keys are off)."""
    gate = request.scope.get(GATE_KEY)
    if isinstance(gate, Gate) and gate.key is not None:
        return str(gate.key.id)
    return "-"


async def _review(request: Request, decision: str) -> Response:
    state = state_of(request)
    QueryString(request).finish()
    assertion_id = str(request.path_params["id"])
    if not is_hex64(assertion_id):
        raise ValidationError("id", "hex_format", "id must be 64 lowercase hex characters")
    store = state.engine.store
    row = await state.offload(store.quarantine_item, assertion_id)
    if row is None:
        raise NotFoundError(
            f"assertion {assertion_id} is not in quarantine", code="quarantine_not_found"
        )
    if row.status != "pending":
        raise ConflictError(
            f"assertion {assertion_id} was already {row.status}",
            code="quarantine_reviewed",
            details={"status": row.status},
        )
    reviewer = _reviewer(request)
    record = QuarantineReview(
        assertion_id=assertion_id,
        decision=decision,
        reviewer=reviewer,
        timestamp=int(state.engine.clock.time()),
    )
    result = await state.storage.write("write", lambda: state.writes.write(record))
    log.info(
        "quarantine: %s %s (reason %s, agent_id=%s) by key %s at LSN %d",
        "approved" if decision == "approve" else "rejected",
        assertion_id,
        row.reason,
        row.agent_id,
        reviewer,
        result.lsn,
    )
    now = await state.offload(store.quarantine_item, assertion_id)
    return json_response(QuarantineReviewed(item=quarantine_item(now or row), lsn=result.lsn))


async def approve(request: Request) -> Response:
    return await _review(request, "approve")


async def reject(request: Request) -> Response:
    return await _review(request, "reject")


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    return [
        api_route(
            "/v1/admin/quarantine",
            list_quarantine,
            ["GET"],
            EndpointDoc(
                summary="Quarantined assertions (pending by default), oldest decision first.",
                tag="admin",
                responses={200: QuarantineList, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/quarantine/{id}/approve",
            approve,
            ["POST"],
            EndpointDoc(
                summary="Release a quarantined assertion: lenses and views count it from now on.",
                tag="admin",
                responses={200: QuarantineReviewed, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/quarantine/{id}/reject",
            reject,
            ["POST"],
            EndpointDoc(
                summary="Reject a quarantined assertion: it stays out of every lens and view.",
                tag="admin",
                responses={200: QuarantineReviewed, **ADMIN_ERRORS},
            ),
            timeout_seconds=timeout,
        ),
    ]
