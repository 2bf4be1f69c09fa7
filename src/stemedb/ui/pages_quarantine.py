"""The quarantine in the dashboard (ADR 0023): the pending quarantined writes with their
reason and claim (Admin, and one agent's on the Agents page), and the approve / reject
forms (``POST /ui/admin/quarantine/{id}/approve|reject``, role ``admin``).

The list is ``GET /v1/admin/quarantine``'s answer and a review is ``POST
/v1/admin/quarantine/{id}/approve|reject`` itself, called in process with the viewer's
key (``ui.inprocess``): the same checks, the same ``QuarantineReview`` record naming
the admin's API key id (``-`` while keys are off, as the API names it), the same log
line and metrics. Only the claimed value is read here, from the store, to show it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

import msgspec
from starlette.responses import Response

from stemedb.errors import ValidationError
from stemedb.model.signing import is_hex64
from stemedb.query.service import QueryService
from stemedb.ui.core import Ui, Visit
from stemedb.ui.inprocess import call_api
from stemedb.ui.render import show_value

QUARANTINE_TWIN: Final = "/v1/admin/quarantine"
SHOWN: Final = 100
DECISIONS: Final = ("approve", "reject")
# Where a review may send the viewer back to: the admin page or one agent's page.
_BACK: Final = re.compile(r"/ui/admin|/ui/agents\?agent_id=[0-9a-f]{64}")


class Held(msgspec.Struct, frozen=True):
    """One pending quarantined write as the dashboard lists it."""

    id: str
    reason: str
    detail: str
    agent_id: str
    subject: str
    predicate: str
    value: str
    confidence: float | None
    quarantined_at: float


def _claims(service: QueryService, items: list[dict[str, Any]]) -> list[Held]:
    store = service.store
    held = []
    for item in items:
        found = store.assertion(str(item["id"]))
        record = found[1] if found is not None else None
        held.append(
            Held(
                id=str(item["id"]),
                reason=str(item["reason"]),
                detail=str(item.get("detail") or ""),
                agent_id=str(item["agent_id"]),
                subject=str(item["subject"]),
                predicate=str(item["predicate"]),
                value=show_value(record.object) if record is not None else "—",
                confidence=record.confidence if record is not None else None,
                quarantined_at=float(item["quarantined_at"]),
            )
        )
    return held


async def pending(ui: Ui, visit: Visit, agent_id: str | None = None) -> list[Held] | None:
    """The first ``SHOWN`` pending quarantined writes (of ``agent_id``), or None when the
    viewer may not list the quarantine (not an admin)."""
    if not ui.may(visit, QUARANTINE_TWIN):
        return None
    params = {"status": "pending", "limit": str(SHOWN)}
    if agent_id:
        params["agent_id"] = agent_id
    answer = await call_api(
        visit.request, "GET", QUARANTINE_TWIN, secret=visit.secret, params=params
    )
    items = answer.get("items", []) if isinstance(answer, dict) else []
    return await ui.host.offload(_claims, ui.host.service, list(items))


def review_handler(decision: str) -> Callable[[Ui, Visit], Any]:
    """The handler of ``POST /ui/admin/quarantine/{id}/<decision>``."""

    async def review(ui: Ui, visit: Visit) -> Response:
        assertion_id = str(visit.request.path_params["id"])
        if not is_hex64(assertion_id):
            raise ValidationError("id", "hex_format", "id must be 64 lowercase hex characters")
        path = f"{QUARANTINE_TWIN}/{urllib.parse.quote(assertion_id, safe='')}/{decision}"
        await call_api(visit.request, "POST", path, secret=visit.secret)
        back = visit.text("next")
        return ui.redirect(visit, back if _BACK.fullmatch(back) else "/ui/admin#quarantine")

    review.__name__ = f"quarantine_{decision}"
    return review


__all__ = ["DECISIONS", "QUARANTINE_TWIN", "SHOWN", "Held", "pending", "review_handler"]
