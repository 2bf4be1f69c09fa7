"""The disagreement board (``GET /ui/disagreements``): questions ranked by conflict, in
the categories of ``ui.classify`` (thresholds from ``[ui]``).

Each question is resolved by the skeptic lens exactly as ``GET /v1/skeptic`` does
(``QueryService.resolve_key``), without an audit record per row: the board is an
overview, not ``board_max_questions`` queries someone asked. At most
``ui.board_max_questions`` questions are read per view, the first in byte order of
``prefix``; each category shows its ``ROWS_SHOWN`` most conflicting.

Fast by design: a question's row is kept in the store's result cache, scoped to its
(subject, predicate), so the writer drops it before it acknowledges any write that
touches the question (in every HTTP process: each absorbs the writer's deltas). A view
resolves only the questions written since they were last shown, plus at most
``REFRESH_PER_VIEW`` rows older than ``ROW_MAX_AGE_SECONDS`` (decay and trust move
scores slowly: the same bound as the materialized views'); every other row is a cache
hit. The first view after a start resolves every question it shows.
"""

from __future__ import annotations

from typing import Final

import msgspec
from starlette.responses import Response

from stemedb.config import UiConfig
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.query.views import VIEW_MAX_AGE_SECONDS
from stemedb.ui.classify import CATEGORY_LABELS, CATEGORY_ORDER, category_from
from stemedb.ui.core import Ui, Visit

ROW_MAX_AGE_SECONDS: Final = VIEW_MAX_AGE_SECONDS
REFRESH_PER_VIEW: Final = 50
ROW_BYTES: Final = 400
ROWS_SHOWN: Final = 100  # per category, most conflicting first (the page stays < 100 KB)
_CACHE_TAG: Final = "ui-board"


class BoardRow(msgspec.Struct, frozen=True):
    subject: str
    predicate: str
    conflict: float
    status: str
    claims: int
    values: int
    category: str


def board_row(
    service: QueryService, subject: str, predicate: str, ui: UiConfig, lsn: int, now: float
) -> BoardRow | None:
    """One question under the skeptic lens (None: no candidate claim)."""
    params = QueryParams(subject=subject, predicate=predicate, lens="skeptic")
    res = service.resolve_key(subject, predicate, params, "skeptic", lsn, now).resolution
    if res.candidates_count == 0:
        return None
    groups = ((g.value_key, g.best_tier, len(g.claim_ids)) for g in res.groups)
    return BoardRow(
        subject=subject,
        predicate=predicate,
        conflict=res.conflict_score,
        status=res.status,
        claims=res.candidates_count,
        values=len(res.groups),
        category=category_from(res.conflict_score, groups, ui),
    )


def board(service: QueryService, prefix: str, ui: UiConfig) -> tuple[list[BoardRow], bool]:
    """Every question under ``prefix`` (up to the bound) with its category; and whether
    the bound cut the list."""
    store = service.store
    cache = store.cache
    keys = store.subject_predicates(
        prefix, None, prefix=True, after=None, limit=ui.board_max_questions + 1
    )
    cut = len(keys) > ui.board_max_questions
    generation = cache.generation  # before the LSN: a write after it refuses our put
    lsn, now = service.engine.applied_lsn, service.engine.clock.time()
    refreshed = 0
    rows = []
    for key in keys[: ui.board_max_questions]:
        hit = cache.get((_CACHE_TAG, key))
        row: BoardRow | None
        if isinstance(hit, tuple) and (
            now - hit[0] < ROW_MAX_AGE_SECONDS or refreshed >= REFRESH_PER_VIEW
        ):
            row = hit[1]
        else:
            refreshed += hit is not None
            row = board_row(service, key[0], key[1], ui, lsn, now)
            value = (now, row)
            cache.put((_CACHE_TAG, key), value, key, generation=generation, size_bytes=ROW_BYTES)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (-r.conflict, r.subject, r.predicate))
    return rows, cut


async def disagreements(ui: Ui, visit: Visit) -> Response:
    prefix = visit.query("prefix")
    host = ui.host
    rows, cut = await host.offload(board, host.service, prefix, host.config.ui)
    groups = []
    for c in CATEGORY_ORDER:
        found = [r for r in rows if r.category == c]
        groups.append((c, CATEGORY_LABELS[c], found[:ROWS_SHOWN], len(found)))
    return ui.respond(
        visit,
        "board.html",
        "/v1/skeptic",
        groups=groups,
        prefix=prefix,
        cut=cut,
        settings=host.config.ui,
    )


__all__ = ["BoardRow", "board", "board_row", "disagreements"]
