"""One mounted dashboard (``Ui``) and what every page does before its own work:
admit the viewer like the page's JSON twin would (``Host.admit``), check the CSRF token
of a form, render, and answer refusals as pages (``page``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from stemedb.errors import AuthorizationError, StemeError, ValidationError
from stemedb.model.apikey import role_allows
from stemedb.ui.host import ANONYMOUS, Host, Principal
from stemedb.ui.render import PAGE_HEADERS, environment, render
from stemedb.ui.session import COOKIE_NAME, Session, Sessions, same_token

FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FORM_BYTES: Final = 64 * 1024
UI_PREFIX: Final = "/ui"

# The navigation: (path, label, the JSON twin whose role the page needs).
NAV: Final = (
    ("/ui", "Home", "/v1/feed"),
    ("/ui/search", "Search", "/v1/search"),
    ("/ui/disagreements", "Disagreements", "/v1/skeptic"),
    ("/ui/sources", "Sources", "/v1/sources"),
    ("/ui/audit", "Audit", "/v1/audit/queries"),
    ("/ui/agents", "Agents", "/v1/agents/{agent_id}"),
    ("/ui/admin", "Admin", "/v1/admin/api-keys"),
)


@dataclass
class Visit:
    """One request to the dashboard: who, their session, the form of a POST."""

    request: Request
    principal: Principal
    session: Session
    secret: str | None
    fresh: bool  # the session is new: the answer sets the cookie
    form: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, default: str = "") -> str:
        return self.form.get(name, default).strip()

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()


class Ui:
    """The dashboard's state: its host, templates and sessions."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.env: Environment = environment()
        self.sessions = Sessions(host.data_dir, host.config.ui.session_minutes * 60.0)
        self.auth_enabled = host.config.auth.enabled
        self.secure_cookie = bool(host.config.tls.cert_file)
        self.extras: dict[str, object] = {}  # what pages keep between requests

    # -- admission -------------------------------------------------------------------

    def arrive(self, request: Request) -> Visit:
        """The request's session (a new anonymous one when it has none)."""
        session = self.sessions.read(request.cookies.get(COOKIE_NAME))
        fresh = session is None
        if session is None:
            session = self.sessions.anonymous()
        secret = self.sessions.secret_of(session)
        if session.sealed is not None and secret is None:  # sealed by an older key file
            session, fresh = self.sessions.anonymous(), True
        return Visit(request, ANONYMOUS, session, secret, fresh)

    def may(self, visit: Visit, twin: str, method: str = "GET") -> bool:
        """Would the twin let this viewer in (to show or hide a link or a button)?"""
        if not self.auth_enabled:
            return True
        need = self.host.need(twin, method) or "reader"
        role = visit.principal.role
        if role is None:
            return need == "reader" and not self.host.config.auth.require_for_reads
        return role_allows(role, need)

    async def read_form(self, visit: Visit) -> None:
        """A POST's urlencoded form; 403 without the session's CSRF token."""
        request = visit.request
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != FORM_MEDIA_TYPE:
            raise ValidationError(
                "Content-Type",
                "form",
                f"a dashboard form is sent as {FORM_MEDIA_TYPE}",
                status=415,
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise ValidationError("body", "size", "the form is too large", status=413)
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        visit.form = dict(pairs)
        if visit.fresh or not same_token(visit.session.csrf, visit.form.get("csrf")):
            raise AuthorizationError(
                "this form was sent without its CSRF token (reload the page and send it again)",
                code="csrf_failed",
            )

    # -- answers ---------------------------------------------------------------------

    def context(self, visit: Visit, twin_url: str | None) -> dict[str, Any]:
        nav = [(path, label) for path, label, twin in NAV if self.may(visit, twin)]
        return {
            "viewer": visit.principal,
            "csrf": visit.session.csrf,
            "auth_enabled": self.auth_enabled,
            "signed_in": visit.secret is not None,
            "nav": nav,
            "here": visit.request.url.path,
            "twin": twin_url,
            "version": self.host.version,
        }

    def respond(
        self,
        visit: Visit,
        template: str,
        twin_url: str | None,
        status: int = 200,
        **values: Any,
    ) -> Response:
        context = self.context(visit, twin_url)
        context.update(values)
        response = HTMLResponse(
            render(self.env, template, context), status_code=status, headers=PAGE_HEADERS
        )
        if visit.fresh:
            self.set_cookie(response, visit.session)
        return response

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.sessions.cookie_value(session),
            max_age=int(self.sessions.max_age_seconds),
            path=UI_PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
        )

    def redirect(self, visit: Visit, to: str) -> Response:
        response = RedirectResponse(to, status_code=303, headers={"Cache-Control": "no-store"})
        if visit.fresh:
            self.set_cookie(response, visit.session)
        return response

    def refusal(self, visit: Visit, exc: StemeError) -> Response:
        """A refusal (401, 403, 404, ...) as a page; a 401 offers the sign-in form."""
        return self.respond(
            visit, "error.html", None, status=exc.status, error=exc, needs_key=exc.status == 401
        )


Handler = Callable[[Ui, Visit], Awaitable[Response]]


def page(ui: Ui, twin: str | None, handler: Handler, method: str = "GET") -> Callable[..., Any]:
    """The endpoint of a page or form: admitted as ``method twin`` is by the API
    (``twin`` None: open to anyone, e.g. the sign-in form)."""

    async def endpoint(request: Request) -> Response:
        visit = ui.arrive(request)
        try:
            if twin is not None:
                visit.principal = await ui.host.admit(visit.secret, twin, method)
            if request.method == "POST":
                await ui.read_form(visit)
            return await handler(ui, visit)
        except StemeError as exc:
            return ui.refusal(visit, exc)

    endpoint.__name__ = handler.__name__
    return endpoint


def needs_role(visit: Visit, role: str) -> bool:
    return visit.principal.role is not None and role_allows(visit.principal.role, role)


__all__ = ["NAV", "Ui", "Visit", "needs_role", "page"]
