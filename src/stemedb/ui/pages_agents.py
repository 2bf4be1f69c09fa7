"""Agents (``GET /ui/agents``): the agents signing the latest changes, and one agent's
trust, counts, quota, rate limit and breaker (``GET /v1/agents/{agent_id}``, in
process, so the API layer's quota and breaker state are the ones shown) and, for an
admin, its pending quarantined writes with the approve / reject forms."""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from stemedb.errors import ValidationError
from stemedb.model.signing import is_hex64
from stemedb.query.service import QueryService
from stemedb.ui.core import Ui, Visit
from stemedb.ui.inprocess import call_api
from stemedb.ui.pages_quarantine import SHOWN, pending

RECENT: Final = 1000
SHOWN_AGENTS: Final = 100


def recent_agents(service: QueryService) -> list[tuple[str, int]]:
    """The signers of the assertions among the last ``RECENT`` changes, most active
    first: one aggregate over the store's signatures (``Store.recent_signers``)."""
    last = service.engine.applied_lsn
    return service.store.recent_signers(max(0, last - RECENT), SHOWN_AGENTS)


async def agents(ui: Ui, visit: Visit) -> Response:
    agent = visit.query("agent_id")
    host = ui.host
    detail = held = None
    if agent:
        if not is_hex64(agent):
            raise ValidationError("agent_id", "hex_format", "64 lowercase hex characters")
        detail = await call_api(visit.request, "GET", f"/v1/agents/{agent}", secret=visit.secret)
        held = await pending(ui, visit, agent)
    recent = await host.offload(recent_agents, host.service)
    return ui.respond(
        visit,
        "agents.html",
        f"/v1/agents/{agent}" if agent else f"/v1/feed?after=0&limit={RECENT}",
        agent=agent,
        detail=detail,
        recent=recent,
        quarantine=held,
        quarantine_shown=SHOWN,
        is_admin=ui.may(visit, "/v1/admin/circuit-breakers"),
    )


__all__ = ["agents"]
