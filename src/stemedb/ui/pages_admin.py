"""Admin (``GET /ui/admin``, role ``admin`` like every ``/v1/admin/*`` route): API keys
(create — the secret shown once — disable, delete), custodial keys, rate-limit
overrides, circuit breakers, the quarantine (``ui.pages_quarantine``), storage, backups
and archive, cluster status. Every list and every change is the ``/v1/admin`` route's
own answer, called in process with the viewer's key (``ui.inprocess``)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

from starlette.responses import Response

from stemedb.errors import ValidationError
from stemedb.ui.core import Ui, Visit
from stemedb.ui.inprocess import call_api
from stemedb.ui.pages_quarantine import SHOWN, pending

LISTS: Final = {
    "keys": "/v1/admin/api-keys",
    "custodial": "/v1/admin/custodial-keys",
    "limits": "/v1/admin/rate-limit",
    "breakers": "/v1/admin/circuit-breakers",
    "storage": "/v1/admin/storage/stats",
    "cluster": "/v1/admin/cluster/status",
}
ADMIN_TWIN: Final = "/v1/admin/api-keys"
STORAGE_KEY: Final = "admin-storage"
STORAGE_TTL_SECONDS: Final = 30.0


async def _lists(ui: Ui, visit: Visit) -> dict[str, Any]:
    """Every list; the storage figures (``count(*)`` over the tables: ~60 ms at a
    million assertions) are re-read at most every ``STORAGE_TTL_SECONDS``."""
    kept = ui.extras.get(STORAGE_KEY)
    out = {}
    for name, path in LISTS.items():
        fresh = isinstance(kept, tuple) and time.monotonic() - kept[0] < STORAGE_TTL_SECONDS
        if name == "storage" and isinstance(kept, tuple) and fresh:
            out[name] = kept[1]
            continue
        out[name] = await call_api(visit.request, "GET", path, secret=visit.secret)
        if name == "storage":
            ui.extras[STORAGE_KEY] = (time.monotonic(), out[name])
    return out


async def admin(ui: Ui, visit: Visit, created: Any = None) -> Response:
    config = ui.host.config
    return ui.respond(
        visit,
        "admin.html",
        ADMIN_TWIN,
        lists=await _lists(ui, visit),
        quarantine=await pending(ui, visit),
        quarantine_shown=SHOWN,
        created=created,
        backup_dir=config.backup.dir,
        archive=config.archive,
    )


async def admin_page(ui: Ui, visit: Visit) -> Response:
    return await admin(ui, visit)


def _count(visit: Visit, name: str) -> int:
    raw = visit.text(name)
    if not raw.isdigit():
        raise ValidationError(name, "type", f"{name} must be a whole number")
    return int(raw)


def _quoted(visit: Visit, name: str) -> str:
    value = visit.text(name)
    if not value:
        raise ValidationError(name, "required", f"{name} is required")
    return urllib.parse.quote(value, safe="")


Change = Callable[[Visit], tuple[str, str, object]]  # -> (method, path, body)

CHANGES: Final[dict[str, Change]] = {
    "api-keys": lambda v: (
        "POST",
        "/v1/admin/api-keys",
        {"name": v.text("name"), "role": v.text("role")},
    ),
    "api-keys/disable": lambda v: ("POST", f"/v1/admin/api-keys/{_quoted(v, 'id')}/disable", None),
    "api-keys/delete": lambda v: ("DELETE", f"/v1/admin/api-keys/{_quoted(v, 'id')}", None),
    "custodial-keys": lambda v: (
        "POST",
        "/v1/admin/custodial-keys",
        {"api_key_id": v.text("api_key_id")},
    ),
    "rate-limit": lambda v: (
        "POST",
        "/v1/admin/rate-limit",
        {
            ("agent_id" if len(v.text("target")) == 64 else "api_key_id"): v.text("target"),
            "max_requests_per_min": _count(v, "max_requests_per_min"),
        },
    ),
    "rate-limit/delete": lambda v: ("DELETE", f"/v1/admin/rate-limit/{_quoted(v, 'target')}", None),
    "circuit-breaker/reset": lambda v: (
        "POST",
        "/v1/admin/circuit-breaker/reset",
        {"agent_id": v.text("agent_id")},
    ),
    "circuit-breaker/trip": lambda v: (
        "POST",
        "/v1/admin/circuit-breaker/trip",
        {
            "agent_id": v.text("agent_id"),
            "reason": v.text("reason") or "tripped from the dashboard",
        },
    ),
}


def change_handler(action: str) -> Callable[[Ui, Visit], Any]:
    """The handler of ``POST /ui/admin/<action>``: the ``/v1/admin`` call, then the
    admin page (with the new key's secret, once, after ``api-keys``)."""
    build = CHANGES[action]

    async def change(ui: Ui, visit: Visit) -> Response:
        method, path, body = build(visit)
        answer = await call_api(visit.request, method, path, secret=visit.secret, body=body)
        if action == "api-keys":
            return await admin(ui, visit, created=answer)
        return ui.redirect(visit, "/ui/admin")

    change.__name__ = "admin_" + action.replace("/", "_").replace("-", "_")
    return change


__all__ = ["ADMIN_TWIN", "CHANGES", "admin_page", "change_handler"]
