"""The claim page (``GET /ui/claims/{id}``: the trace) and the audit trail
(``GET /ui/audit``: recent queries, by agent and time)."""

from __future__ import annotations

import urllib.parse
from typing import Final

from starlette.responses import Response

from stemedb.errors import ValidationError
from stemedb.model.signing import is_hex64
from stemedb.ui.core import Ui, Visit
from stemedb.ui.timeparse import iso_minutes, parse_time

AUDIT_PAGE: Final = 100


async def claim(ui: Ui, visit: Visit) -> Response:
    claim_id = str(visit.request.path_params["id"])
    if not is_hex64(claim_id):
        raise ValidationError("id", "hex_format", "a claim id is 64 lowercase hex characters")
    host = ui.host
    trace = await host.offload(host.service.provenance.trace, claim_id)
    return ui.respond(visit, "claim.html", f"/v1/trace/{claim_id}", trace=trace)


async def audit(ui: Ui, visit: Visit) -> Response:
    agent = visit.query("agent_id") or None
    if agent is not None and not is_hex64(agent):
        raise ValidationError("agent_id", "hex_format", "agent_id is 64 lowercase hex characters")
    since = parse_time("from", visit.query("from"))
    until = parse_time("to", visit.query("to"))
    host = ui.host
    rows = await host.offload(
        host.service.audit.list, agent_id=agent, since=since, until=until, limit=AUDIT_PAGE
    )
    params = {"agent_id": agent, "from": since, "to": until, "limit": AUDIT_PAGE}
    twin = "/v1/audit/queries?" + urllib.parse.urlencode(
        {k: v for k, v in params.items() if v is not None}
    )
    return ui.respond(
        visit,
        "audit.html",
        twin,
        rows=rows,
        agent=agent or "",
        since=iso_minutes(since),
        until=iso_minutes(until),
    )


__all__ = ["audit", "claim"]
