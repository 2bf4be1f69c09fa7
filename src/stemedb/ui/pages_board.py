"""The disagreement board (``GET /ui/disagreements``): questions ranked by conflict, in
the categories of ``ui.classify`` (thresholds from ``[ui]``).

Each question is resolved by the skeptic lens exactly as ``GET /v1/skeptic`` does
(``QueryService.resolve_key`` + ``skeptic_claims``), without an audit record per row:
the board is an overview, not ``board_max_questions`` queries someone asked. At most
``ui.board_max_questions`` questions are read per view, the first in byte order of
``prefix``.
"""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from stemedb.config import UiConfig
from stemedb.query.claim_views import skeptic_claims
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.ui.classify import CATEGORY_LABELS, CATEGORY_ORDER, category_of
from stemedb.ui.core import Ui, Visit
from stemedb.wire import SkepticResult


class BoardRow(msgspec.Struct, frozen=True):
    subject: str
    predicate: str
    conflict: float
    status: str
    claims: int
    values: int
    category: str


def board(service: QueryService, prefix: str, ui: UiConfig) -> tuple[list[BoardRow], bool]:
    """Every question under ``prefix`` (up to the bound) with its category; and whether
    the bound cut the list."""
    store = service.store
    keys = store.subject_predicates(
        prefix, None, prefix=True, after=None, limit=ui.board_max_questions + 1
    )
    cut = len(keys) > ui.board_max_questions
    lsn, now = service.engine.applied_lsn, service.engine.clock.time()
    rows = []
    for subject, predicate in keys[: ui.board_max_questions]:
        params = QueryParams(subject=subject, predicate=predicate, lens="skeptic")
        resolved = service.resolve_key(subject, predicate, params, "skeptic", lsn, now)
        res = resolved.resolution
        if res.candidates_count == 0:
            continue
        result = SkepticResult(
            query_id="",
            subject=subject,
            predicate=predicate,
            status=res.status,
            conflict_score=res.conflict_score,
            candidates_count=res.candidates_count,
            claims=skeptic_claims(store, resolved.selection.rows, res),
            source_warnings=[],
        )
        rows.append(
            BoardRow(
                subject=subject,
                predicate=predicate,
                conflict=res.conflict_score,
                status=res.status,
                claims=res.candidates_count,
                values=len(res.groups),
                category=category_of(result, ui),
            )
        )
    rows.sort(key=lambda r: (-r.conflict, r.subject, r.predicate))
    return rows, cut


async def disagreements(ui: Ui, visit: Visit) -> Response:
    prefix = visit.query("prefix")
    host = ui.host
    rows, cut = await host.offload(board, host.service, prefix, host.config.ui)
    groups = [(CATEGORY_LABELS[c], [r for r in rows if r.category == c]) for c in CATEGORY_ORDER]
    return ui.respond(
        visit,
        "board.html",
        "/v1/skeptic",
        groups=groups,
        prefix=prefix,
        cut=cut,
        settings=host.config.ui,
    )


__all__ = ["board", "disagreements"]
