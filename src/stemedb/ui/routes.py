"""The dashboard's routes (``ui_routes``), mounted at ``/ui`` by ``api.app`` when
``[ui] enabled``. Each page names its JSON twin: the API route whose role it asks for.

The form posts are ``application/x-www-form-urlencoded`` by design (HTML forms): they
are not JSON routes, so the API's JSON ``Content-Type`` rule does not apply to them
(``UI_PREFIX``); each checks its own media type and CSRF token (``core.read_form``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stemedb.ui.core import UI_PREFIX, Ui, page
from stemedb.ui.host import Host
from stemedb.ui.pages_admin import CHANGES, admin_page, change_handler
from stemedb.ui.pages_agents import agents
from stemedb.ui.pages_board import disagreements
from stemedb.ui.pages_browse import search
from stemedb.ui.pages_home import feed_stream, home
from stemedb.ui.pages_quarantine import DECISIONS, QUARANTINE_TWIN, review_handler
from stemedb.ui.pages_question import question
from stemedb.ui.pages_records import audit, claim
from stemedb.ui.pages_session import login, login_page, logout
from stemedb.ui.pages_sources import RETRACT_TWIN, preview, register, retract, sources

STATIC_DIR = Path(__file__).parent / "static"


def ui_routes(host: Host) -> list[BaseRoute]:
    ui = Ui(host)
    get = [
        ("", "/v1/feed", home),
        ("/feed/stream", "/v1/feed/stream", feed_stream),
        ("/search", "/v1/search", search),
        ("/question", "/v1/query", question),
        ("/login", None, login_page),
        ("/claims/{id}", "/v1/trace/{id}", claim),
        ("/audit", "/v1/audit/queries", audit),
        ("/disagreements", "/v1/skeptic", disagreements),
        ("/sources", "/v1/sources", sources),
        ("/agents", "/v1/agents/{agent_id}", agents),
        ("/admin", "/v1/admin/api-keys", admin_page),
    ]
    post = [
        ("/login", None, login),
        ("/logout", None, logout),
        ("/sources", "/v1/sources", register),
        ("/sources/{hash}/retract", RETRACT_TWIN, retract),
        *((f"/admin/{action}", "/v1/admin/api-keys", change_handler(action)) for action in CHANGES),
        *(
            (f"/admin/quarantine/{{id}}/{d}", f"{QUARANTINE_TWIN}/{{id}}/{d}", review_handler(d))
            for d in DECISIONS
        ),
    ]

    routes: list[BaseRoute] = [
        Route(UI_PREFIX + path, page(ui, twin, handler), methods=["GET"])
        for path, twin, handler in get
    ]
    routes += [
        Route(UI_PREFIX + path, page(ui, twin, handler, "POST"), methods=["POST"])
        for path, twin, handler in post
    ]
    # the preview is the retraction's dry run: it asks for the retraction route's role
    preview_page = page(ui, RETRACT_TWIN, preview, "POST")
    routes.append(Route(UI_PREFIX + "/sources/{hash}/retract", preview_page, methods=["GET"]))
    routes.append(Mount(UI_PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="ui-static"))
    return routes


__all__ = ["UI_PREFIX", "ui_routes"]
