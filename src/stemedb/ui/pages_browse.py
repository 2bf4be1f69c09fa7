"""Search and browse (``GET /ui/search``): ``q`` searches (``/v1/search``); without it,
subjects by prefix (``/v1/subjects``) and one subject's predicates
(``/v1/subjects/{subject}/predicates``), each paginated with the API's cursors."""

from __future__ import annotations

import urllib.parse
from typing import Final

from starlette.responses import Response

from stemedb.query import search as search_api
from stemedb.ui.core import Ui, Visit
from stemedb.ui.pages_question import question_url

PAGE_SIZE: Final = 50
SEARCH_PAGE: Final = 20


def _url(path: str, **params: str | None) -> str:
    kept = {k: v for k, v in params.items() if v}
    return path + ("?" + urllib.parse.urlencode(kept) if kept else "")


async def search(ui: Ui, visit: Visit) -> Response:
    host = ui.host
    store = host.service.store
    q, prefix = visit.query("q"), visit.query("prefix")
    subject, cursor = visit.query("subject"), visit.query("cursor") or None
    hits = subjects = predicates = None
    if q:
        hits = await host.offload(search_api.search, store, q, "words", SEARCH_PAGE, cursor)
        twin = _url("/v1/search", q=q, limit=str(SEARCH_PAGE), cursor=cursor)
        more = _url("/ui/search", q=q, cursor=hits.next_cursor) if hits.next_cursor else None
    elif subject:
        predicates = await host.offload(search_api.predicates, store, subject, PAGE_SIZE, cursor)
        twin = _url(
            f"/v1/subjects/{urllib.parse.quote(subject, safe='/')}/predicates", cursor=cursor
        )
        nxt = predicates.next_cursor
        more = _url("/ui/search", subject=subject, cursor=nxt) if nxt else None
    else:
        subjects = await host.offload(search_api.subjects, store, prefix, PAGE_SIZE, cursor)
        twin = _url("/v1/subjects", prefix=prefix, limit=str(PAGE_SIZE), cursor=cursor)
        nxt = subjects.next_cursor
        more = _url("/ui/search", prefix=prefix, cursor=nxt) if nxt else None
    return ui.respond(
        visit,
        "search.html",
        twin,
        q=q,
        prefix=prefix,
        subject=subject,
        hits=hits,
        subjects=subjects,
        predicates=predicates,
        more=more,
        question_url=question_url,
        subject_url=lambda s: _url("/ui/search", subject=s),
    )


__all__ = ["search"]
