"""Home (``GET /ui``): counts, ingest rate, health and readiness, the live feed; and the
feed's stream for the page (``GET /ui/feed/stream``, the bytes of ``/v1/feed/stream``
behind the session, since a browser's EventSource cannot send ``X-API-Key``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Final

import msgspec
from starlette.responses import Response, StreamingResponse

from stemedb.errors import ValidationError, error_type_of
from stemedb.query.service import QueryService
from stemedb.ui.core import Ui, Visit
from stemedb.ui.host import Host
from stemedb.ui.render import show_value
from stemedb.wire import FeedItem

log = logging.getLogger("stemedb.ui")

FEED_SHOWN: Final = 20
AGENTS_WINDOW: Final = 1000  # the changes whose signers count as the agents seen lately
MAX_AGENTS_COUNTED: Final = 100_000
STATS_TTL_SECONDS: Final = 5.0
RATE_WINDOW_SECONDS: Final = 300.0
FEED_KINDS: Final = "assertion vote epoch source retraction supersession cosignature trust_outcome"


class FeedRow(msgspec.Struct, frozen=True):
    lsn: int
    kind: str
    id: str
    at: float
    text: str
    href: str | None


def feed_row(item: FeedItem) -> FeedRow:
    record = item.record
    text, href = item.kind, None
    subject = getattr(record, "subject", None)
    if item.kind == "assertion" and subject is not None:
        value = show_value(getattr(record, "object", ""))
        text = f"{subject} · {getattr(record, 'predicate', '')} = {value}"
        href = f"/ui/claims/{item.id}"
    elif item.kind in ("source", "retraction"):
        text = f"{item.kind} {getattr(record, 'source_hash', '')[:12]}…"
    return FeedRow(
        lsn=item.lsn, kind=item.kind, id=item.id, at=item.committed_at, text=text, href=href
    )


class Counts(msgspec.Struct, frozen=True):
    tables: dict[str, int]
    retractions: int
    agents_recent: int


def read_counts(service: QueryService, applied: int) -> Counts:
    store = service.store
    agents = store.recent_signers(max(0, applied - AGENTS_WINDOW), MAX_AGENTS_COUNTED)
    return Counts(
        tables=store.counts(),
        retractions=len(store.retracted_sources()),
        agents_recent=len(agents),
    )


class Pulse:
    """Counts and the ingest rate seen by this process. The counts (``count(*)`` over
    the tables: tens of milliseconds at a million rows) are read once, then re-read
    off the request path when older than ``STATS_TTL_SECONDS`` and the store moved:
    a view shows the last counts read, at most one refresh runs at a time."""

    def __init__(self) -> None:
        self.counts: Counts | None = None
        self.counted_at = 0.0
        self.counted_lsn = -1
        self.refreshing: asyncio.Task[None] | None = None
        self.samples: deque[tuple[float, int]] = deque()

    async def refresh(self, host: Host, applied: int) -> None:
        self.counts = await host.offload(read_counts, host.service, applied)
        self.counted_at, self.counted_lsn = time.monotonic(), applied

    async def _refresh_logged(self, host: Host, applied: int) -> None:
        try:
            await self.refresh(host, applied)
        except Exception as exc:  # the last counts stay; the next view tries again
            log.exception("Error: %s: the home page's counts: %s", error_type_of(exc), exc)

    async def current(self, host: Host, applied: int) -> Counts:
        if self.counts is None:
            await self.refresh(host, applied)
        elif (
            applied != self.counted_lsn
            and time.monotonic() - self.counted_at > STATS_TTL_SECONDS
            and (self.refreshing is None or self.refreshing.done())
        ):
            self.refreshing = asyncio.create_task(self._refresh_logged(host, applied))
        assert self.counts is not None
        return self.counts

    def rate(self, applied: int) -> tuple[float | None, float]:
        now = time.monotonic()
        samples = self.samples
        samples.append((now, applied))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_SECONDS:
            samples.popleft()
        then, lsn = samples[0]
        if now - then < 1.0:
            return None, now - then
        return (applied - lsn) / (now - then), now - then


PULSE_KEY: Final = "pulse"


async def home(ui: Ui, visit: Visit) -> Response:
    host = ui.host
    reasons, applied = await host.readiness()
    service = host.service
    pulse = ui.extras.setdefault(PULSE_KEY, Pulse())
    assert isinstance(pulse, Pulse)
    counts = await pulse.current(host, applied)
    rate, window = pulse.rate(applied)
    page = await host.offload(service.provenance.feed, max(0, applied - FEED_SHOWN), FEED_SHOWN)
    rows = [feed_row(item) for item in reversed(page.items)]
    return ui.respond(
        visit,
        "home.html",
        "/v1/feed",
        counts=counts,
        rate=rate,
        rate_window=window,
        reasons=reasons,
        applied=applied,
        uptime=host.uptime_seconds(),
        feed=rows,
        after=page.last_lsn,
        kinds=FEED_KINDS,
    )


async def feed_stream(ui: Ui, visit: Visit) -> Response:
    raw = visit.query("after", "0")
    if not raw.isdigit():
        raise ValidationError("after", "type", "after must be an LSN (integer)")
    return StreamingResponse(
        ui.host.feed_events(int(raw)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


__all__ = ["FeedRow", "feed_row", "feed_stream", "home"]
