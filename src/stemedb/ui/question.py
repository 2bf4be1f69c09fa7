"""The question page's data (one subject + predicate), read on the API's read pool.
Its list of claims includes the quarantined ones, flagged with their review status.

Every lens answers through ``QueryService.query`` (audited, endpoint ``ui``) — the
same call as ``GET /v1/query`` — and the skeptic view through ``QueryService.skeptic``
(``GET /v1/skeptic``). The timeline re-resolves the question as it stood after each of
up to ``TIMELINE_POINTS`` commits of its claims (``resolve_key`` at that LSN, the same
resolution ``as_of`` gives, not audited: it is a chart, not a query anyone asked).
"""

from __future__ import annotations

from typing import Final

import msgspec

from stemedb.config import UiConfig
from stemedb.lens import LENS_NAMES
from stemedb.model.records import SOURCE_CLASS_TIER
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.ui.charts import TierChart, TimeChart, tier_chart, time_chart
from stemedb.ui.classify import CATEGORY_LABELS, category_of
from stemedb.ui.render import show_time, show_value
from stemedb.wire import ClaimView, SkepticResult

TIMELINE_POINTS: Final = 12
CLAIMS_SHOWN: Final = 500
UI_ENDPOINT: Final = "ui"
WHY: Final[dict[str, str]] = {
    "recency": "the newest claim wins",
    "confidence": "the highest confidence times signer trust wins",
    "consensus": "the value with the most signer-deduplicated support wins",
    "votes": "the claim with the most vote weight wins",
    "authority": "the most authoritative source tier wins",
    "layered": "the best tier with a clear majority decides",
    "skeptic": "never names a winner: it reports the disagreement",
}


class LensAnswer(msgspec.Struct, frozen=True):
    lens: str
    winner: ClaimView | None
    value: str
    confidence: float
    conflict: float
    why: str


class TimePoint(msgspec.Struct, frozen=True):
    lsn: int
    at: float
    label: str


class QuestionView(msgspec.Struct, frozen=True):
    subject: str
    predicate: str
    as_of: float | None
    claims: list[ClaimView]
    tiers: dict[str, int]
    lenses: list[LensAnswer]
    skeptic: SkepticResult
    category: str
    tier_chart: TierChart
    timeline: list[TimePoint]
    time_chart: TimeChart | None
    quarantine: dict[str, str]  # claim id -> pending | rejected | approved (ADR 0023)


def _why(lens: str, winner: ClaimView | None, deciding_tier: int | None, status: str) -> str:
    base = WHY.get(lens, lens)
    if lens == "skeptic" or winner is None:
        return f"{base} ({status})" if lens == "skeptic" else f"{base}: no candidate"
    detail = {
        "recency": f"signed {show_time(winner.timestamp)}",
        "confidence": f"confidence {winner.confidence:.2f}",
        "consensus": f"weight {winner.weight:.2f}",
        "votes": f"vote weight {winner.vote_weight:.2f}",
        "authority": f"tier {SOURCE_CLASS_TIER.get(winner.source_class, 3)}"
        f" ({winner.source_class})",
        "layered": f"decided at tier {deciding_tier}",
    }.get(lens, "")
    return f"{base}: {detail}" if detail else base


def _lenses(
    service: QueryService, subject: str, predicate: str, as_of: float | None
) -> list[LensAnswer]:
    answers = []
    for lens in LENS_NAMES:
        params = QueryParams(subject=subject, predicate=predicate, lens=lens, as_of=as_of, limit=1)
        res = service.query(params, endpoint=UI_ENDPOINT).resolution
        if res is None:
            continue
        winner = res.winner
        answers.append(
            LensAnswer(
                lens=lens,
                winner=winner,
                value=show_value(winner.object) if winner is not None else "—",
                confidence=res.resolution_confidence,
                conflict=res.conflict_score,
                why=_why(lens, winner, res.deciding_tier, res.status or ""),
            )
        )
    return answers


def _timeline(
    service: QueryService, subject: str, predicate: str, claims: list[ClaimView]
) -> tuple[list[TimePoint], TimeChart | None]:
    lsns = sorted({c.lsn for c in claims})
    if len(lsns) > TIMELINE_POINTS:
        step = (len(lsns) - 1) / (TIMELINE_POINTS - 1)
        lsns = sorted({lsns[round(i * step)] for i in range(TIMELINE_POINTS)})
    by_lsn = {c.lsn: c for c in claims}
    points = []
    for lsn in lsns:
        found = service.store.assertion(by_lsn[lsn].id)  # its commit time only
        at = found[2] if found is not None else float(by_lsn[lsn].timestamp)
        points.append(TimePoint(lsn=lsn, at=at, label=f"LSN {lsn}"))
    names = {c.id: show_value(c.object) for c in claims}
    params = QueryParams(subject=subject, predicate=predicate, lens="consensus")
    shares: dict[str, list[float]] = {}
    for index, point in enumerate(points):
        resolved = service.resolve_key(subject, predicate, params, "consensus", point.lsn, point.at)
        for group in resolved.resolution.groups:
            name = names.get(group.claim_ids[0], group.value_key)
            shares.setdefault(name, [0.0] * len(points))[index] = group.share
    if len(points) < 2:
        return points, None
    order = sorted(shares)
    return points, time_chart([p.label for p in points], shares, order)


def _quarantine(service: QueryService, subject: str, predicate: str) -> dict[str, str]:
    """The question's claims the screening quarantined, with their review status now."""
    out = {}
    for row in service.store.candidates(subject, predicate):
        if row.quarantine_lsn is None:
            continue
        if row.released_lsn is not None:
            out[row.id] = "approved"
            continue
        item = service.store.quarantine_item(row.id)
        out[row.id] = item.status if item is not None else "pending"
    return out


def question_view(
    service: QueryService, subject: str, predicate: str, as_of: float | None, ui: UiConfig
) -> QuestionView:
    """Everything the question page shows (blocking: run it on the read pool)."""
    every = QueryParams(
        subject=subject,
        predicate=predicate,
        as_of=as_of,
        include_retracted=True,
        include_superseded=True,
        include_quarantined=True,
        limit=CLAIMS_SHOWN,
    )
    claims = service.query(every, endpoint=UI_ENDPOINT).claims
    skeptic = service.skeptic(subject, predicate, as_of=as_of)
    tiers = {c.id: SOURCE_CLASS_TIER.get(c.source_class, 3) for c in claims}
    names = sorted({show_value(c.value) for c in skeptic.claims})
    points, chart = _timeline(service, subject, predicate, claims)
    return QuestionView(
        subject=subject,
        predicate=predicate,
        as_of=as_of,
        claims=claims,
        tiers=tiers,
        lenses=_lenses(service, subject, predicate, as_of),
        skeptic=skeptic,
        category=CATEGORY_LABELS[category_of(skeptic, ui)],
        tier_chart=tier_chart(skeptic, names),
        timeline=points,
        time_chart=chart,
        quarantine=_quarantine(service, subject, predicate),
    )


__all__ = ["QuestionView", "question_view"]
