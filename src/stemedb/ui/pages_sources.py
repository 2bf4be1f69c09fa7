"""Sources (``GET /ui/sources``), the retraction impact preview
(``GET /ui/sources/{hash}/retract``: the dry run of ``query.impact``, as
``POST /v1/sources/{hash}/retract?dry_run=true``) and its confirmation
(``POST /ui/sources/{hash}/retract``), and registering a source (``POST /ui/sources``).

A source or a retraction is a signed record: the dashboard signs it with the custodial
key of the viewer's API key (created by an admin, ``/v1/admin/custodial-keys``) and
sends it through ``/v1`` in process. Only an agent that registered a source may
retract it (the engine's rule), so the confirm button is offered only then.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec
from starlette.responses import Response

from stemedb.errors import AuthorizationError, ValidationError
from stemedb.model.signing import AgentKey, is_hex64, sign_retraction, sign_source
from stemedb.query.impact import retraction_impact
from stemedb.ui.core import Ui, Visit
from stemedb.ui.inprocess import call_api

PAGE: Final = 100
PREVIEW_LIMIT: Final = 200
RETRACT_TWIN: Final = "/v1/sources/{hash}/retract"
NO_SIGNER: Final = (
    "the dashboard signs with the custodial key of your API key, and it has none: an admin"
    " creates one on the Admin page (or POST /v1/admin/custodial-keys)"
)


def _hash(visit: Visit) -> str:
    value = str(visit.request.path_params["hash"])
    if not is_hex64(value):
        raise ValidationError("source_hash", "hex_format", "64 lowercase hex characters")
    return value


async def _signer(ui: Ui, visit: Visit) -> AgentKey | None:
    key_id = visit.principal.key_id
    return None if key_id is None else await ui.host.signer(key_id)


async def sources(ui: Ui, visit: Visit) -> Response:
    host = ui.host
    after = visit.query("cursor") or None
    if after is not None and not is_hex64(after):
        raise ValidationError("cursor", "hex_format", "not a cursor of this listing")
    rows = await host.offload(host.service.provenance.sources, after=after, limit=PAGE + 1)
    more = rows[PAGE - 1].source_hash if len(rows) > PAGE else None
    signer = await _signer(ui, visit)
    return ui.respond(
        visit,
        "sources.html",
        "/v1/sources" + (f"?cursor={after}" if after else ""),
        rows=rows[:PAGE],
        more=more,
        may_write=ui.may(visit, "/v1/sources", "POST"),
        signer=signer.agent_id if signer is not None else None,
    )


async def preview(ui: Ui, visit: Visit) -> Response:
    source_hash = _hash(visit)
    host = ui.host
    impact = await host.offload(retraction_impact, host.service.store, source_hash, PREVIEW_LIMIT)
    signer = await _signer(ui, visit)
    owner = signer is not None and signer.agent_id in impact.registered_by
    return ui.respond(
        visit,
        "retract.html",
        f"/v1/sources/{source_hash}/retract?dry_run=true",
        impact=impact,
        owner=owner,
        signer=signer.agent_id if signer is not None else None,
        no_signer=NO_SIGNER,
    )


async def retract(ui: Ui, visit: Visit) -> Response:
    source_hash = _hash(visit)
    reason = visit.text("reason")
    if not reason:
        raise ValidationError("reason", "required", "say why the source is retracted")
    signer = await _signer(ui, visit)
    if signer is None:
        raise AuthorizationError(NO_SIGNER, code="no_custodial_key")
    record = sign_retraction(signer, source_hash=source_hash, reason=reason)
    body = msgspec.to_builtins(record)
    del body["source_hash"]
    await call_api(
        visit.request,
        "POST",
        f"/v1/sources/{source_hash}/retract",
        secret=visit.secret,
        body=body,
    )
    return ui.redirect(visit, f"/ui/sources/{source_hash}/retract?done=1")


async def register(ui: Ui, visit: Visit) -> Response:
    signer = await _signer(ui, visit)
    if signer is None:
        raise AuthorizationError(NO_SIGNER, code="no_custodial_key")
    content = visit.form.get("content", "")
    if not content or not visit.text("uri"):
        raise ValidationError("content", "required", "a source needs its URI and content")
    source_class = visit.text("source_class") or None
    record = sign_source(
        signer,
        uri=visit.text("uri"),
        content=content,
        title=visit.text("title"),
        source_class=source_class,  # type: ignore[arg-type]  # checked by the API
        timestamp=int(time.time()),
    )
    await call_api(
        visit.request, "POST", "/v1/sources", secret=visit.secret, body=msgspec.to_builtins(record)
    )
    return ui.redirect(visit, f"/ui/sources#s-{record.source_hash}")


__all__ = ["RETRACT_TWIN", "preview", "register", "retract", "sources"]
