"""Sign in and out: ``GET /ui/login``, ``POST /ui/login`` (API key → session cookie),
``POST /ui/logout``. Both forms carry the CSRF token of the visitor's session."""

from __future__ import annotations

from starlette.responses import Response

from stemedb.errors import AuthenticationError
from stemedb.ui.core import UI_PREFIX, Ui, Visit


def _next(raw: str) -> str:
    """Where to go after signing in: a dashboard path only (no open redirect)."""
    if raw.startswith(UI_PREFIX) and not raw.startswith("//") and "\\" not in raw:
        return raw
    return UI_PREFIX


async def login_page(ui: Ui, visit: Visit) -> Response:
    return ui.respond(
        visit,
        "login.html",
        None,
        next_url=_next(visit.query("next")),
        session_minutes=ui.host.config.ui.session_minutes,
    )


async def login(ui: Ui, visit: Visit) -> Response:
    if not ui.auth_enabled:
        return ui.redirect(visit, UI_PREFIX)
    secret = visit.text("api_key")
    if not secret:
        raise AuthenticationError("give an API key to sign in", code="missing_api_key")
    ui.host.authenticate(secret)
    visit.session = ui.sessions.signed_in(secret)
    visit.fresh = True
    return ui.redirect(visit, _next(visit.text("next")))


async def logout(ui: Ui, visit: Visit) -> Response:
    visit.session = ui.sessions.anonymous()
    visit.fresh = True
    return ui.redirect(visit, UI_PREFIX)


__all__ = ["login", "login_page", "logout"]
