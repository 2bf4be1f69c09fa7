"""The read side: candidate selection, lens application, caching, views and audit.

``QueryService`` answers queries; what an answer shows of each claim is built in
``query.claim_views``, what the audit log keeps of it in ``query.audit_entry``."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Final

import msgspec

from stemedb.config import Config, LensSettings
from stemedb.engine import Engine
from stemedb.errors import NotFoundError, ValidationError
from stemedb.lens import DEFAULT_LENS, LENS_NAMES, LensConfig, Resolution, resolve
from stemedb.query.audit import PRUNE_INTERVAL_SECONDS, AuditLog
from stemedb.query.audit_entry import audit_parameters, query_contributions
from stemedb.query.claim_views import (
    claim_views,
    resolution_view,
    skeptic_claims,
    source_warnings,
)
from stemedb.query.cursor import Cursor, decode_cursor, encode_cursor, query_digest
from stemedb.query.params import QueryParams, validate_params
from stemedb.query.provenance import Provenance
from stemedb.query.search import suggestions
from stemedb.query.selection import Selection, select
from stemedb.query.views import ViewKeeper
from stemedb.store.protocol import Store
from stemedb.wire import (
    AuditRecord,
    Contribution,
    GroupResult,
    QueryResult,
    SkepticResult,
    SourceWarning,
)

CACHE_TIME_BUCKET_SECONDS: Final = 60
MAX_GROUPS_PER_PAGE: Final = 100
DIGESTS_CACHED: Final = 4096


class Resolved(msgspec.Struct):
    """A (subject, predicate) resolved under one lens, before paging."""

    selection: Selection
    resolution: Resolution
    lsn_bound: int
    now: float


def lens_config_from(settings: LensSettings) -> LensConfig:
    """The lens constants of the ``[lens]`` section (regulatory claims never decay)."""
    if settings.default not in LENS_NAMES:
        raise ValidationError("lens.default", f"unknown lens {settings.default!r}")
    half_lives: dict[str, float | None] = {"regulatory": None}
    half_lives.update(settings.half_life_days)
    return LensConfig(
        half_life_days=half_lives,
        tier_weights=tuple(settings.tier_weights),
        skeptic_agreed_share=settings.skeptic_agreed_share,
    )


# A random per-process prefix and a counter (32 hex digits, like a uuid4's hex): unique
# across queries and restarts without an os.urandom call per query, which releases the
# GIL and costs a thread switch under load.
_QUERY_ID_PREFIX: Final = uuid.uuid4().hex[:16]
_QUERY_COUNTER: Final = itertools.count(1)


def new_query_id() -> str:
    return f"{_QUERY_ID_PREFIX}{next(_QUERY_COUNTER):016x}"


class QueryService:
    def __init__(
        self,
        engine: Engine,
        *,
        lens_config: LensConfig | None = None,
        default_lens: str = DEFAULT_LENS,
        max_limit: int = 1000,
        refresh_views: bool = True,
        audit_retention_seconds: float | None = None,
        audit_prune_interval_seconds: float = PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self.engine = engine
        self.store: Store = engine.store
        self.lens_config = lens_config or LensConfig.default()
        self.default_lens = default_lens
        self.max_limit = max_limit
        self.audit = AuditLog(
            self.store,
            retention_seconds=audit_retention_seconds,
            prune_interval_seconds=audit_prune_interval_seconds,
            clock=engine.clock.time,
        )
        self.provenance = Provenance(self.store, self.audit)
        self._digests: dict[tuple[QueryParams, str], str] = {}
        self.views = ViewKeeper(self, enabled=refresh_views)
        engine.add_commit_listener(self.views.on_commit)

    @classmethod
    def from_config(
        cls, engine: Engine, config: Config, *, prune_audit: bool = True
    ) -> QueryService:
        """``prune_audit``: this process applies ``audit.retention_days`` (one process
        per node does)."""
        retention_days = config.audit.retention_days
        return cls(
            engine,
            lens_config=lens_config_from(config.lens),
            default_lens=config.lens.default,
            max_limit=config.api.max_query_limit,
            refresh_views=config.storage.view_refresh,
            audit_retention_seconds=(
                retention_days * 86400.0 if prune_audit and retention_days > 0 else None
            ),
            audit_prune_interval_seconds=config.audit.prune_interval_seconds,
        )

    def close(self) -> None:
        self.views.close()
        self.audit.close()

    # -- resolution ----------------------------------------------------------------

    def resolve_key(
        self,
        subject: str,
        predicate: str,
        params: QueryParams,
        lens: str,
        lsn_bound: int,
        now: float,
    ) -> Resolved:
        rows = self.store.candidates(subject, predicate)
        selection = select(
            self.store,
            rows,
            params,
            lsn_bound=lsn_bound,
            latest_lsn=self.engine.applied_lsn,
            now=now,
        )
        resolution = resolve(lens, selection.claims, now=now, config=self.lens_config)
        return Resolved(selection, resolution, lsn_bound, now)

    def _snapshot(self, params: QueryParams, digest: str) -> tuple[Cursor | None, int, float]:
        if params.cursor:
            cursor = decode_cursor(params.cursor, digest)
            return cursor, cursor.lsn_bound, cursor.now
        latest = self.engine.applied_lsn
        if params.as_of is not None:
            return None, min(self.store.lsn_at(params.as_of), latest), params.as_of
        return None, latest, self.engine.clock.time()

    # -- queries -------------------------------------------------------------------

    def digest(self, params: QueryParams, lens: str) -> str:
        """What a cursor is bound to: the query without paging and staleness knobs.
        Remembered for the last ``DIGESTS_CACHED`` queries (a ``repr`` and a SHA-256:
        about 3 % of a query's CPU, and most queries repeat)."""
        found = self._digests.get((params, lens))
        if found is None:
            plain = msgspec.structs.replace(params, cursor=None, limit=0, max_stale_seconds=None)
            found = query_digest(plain, lens)
            if len(self._digests) >= DIGESTS_CACHED:
                self._digests = {}
            self._digests[(params, lens)] = found
        return found

    def query(
        self, params: QueryParams, *, asker: str | None = None, endpoint: str = "query"
    ) -> QueryResult:
        started = time.perf_counter()
        validate_params(params, max_limit=self.max_limit)
        lens = params.lens or self.default_lens
        digest = self.digest(params, lens)
        if params.is_single:
            result = self._single(params, lens, digest)
        else:
            result = self._multi(params, lens, digest)
        if not params.cursor and not result.claims and not result.results:
            result = self._with_suggestions(result, params)
        winner, contributions = query_contributions(result)
        self._record_audit(
            result.query_id,
            endpoint,
            lens,
            result.subject or result.subject_prefix,
            result.predicate,
            params,
            winner,
            contributions,
            asker,
            started,
        )
        return result

    def _with_suggestions(self, result: QueryResult, params: QueryParams) -> QueryResult:
        """``result`` with "did you mean" when nothing is stored for what was asked."""
        if result.resolution is not None and result.resolution.candidates_count:
            return result
        prefix = params.subject_prefix is not None
        subject = params.subject_prefix if prefix else params.subject
        found = suggestions(self.store, subject, params.predicate, prefix=prefix)
        return msgspec.structs.replace(result, suggestions=found) if found else result

    def _single(self, params: QueryParams, lens: str, digest: str) -> QueryResult:
        assert params.subject is not None and params.predicate is not None
        subject, predicate = params.subject, params.predicate
        plain_default = params.is_plain and lens == self.default_lens and not params.cursor
        if plain_default:
            cached = self.views.lookup(subject, predicate, params.limit, params.max_stale_seconds)
            if cached is not None:
                return msgspec.structs.replace(cached, query_id=new_query_id())
        cursor, lsn_bound, now = self._snapshot(params, digest)
        cache_key = None
        if cursor is None and params.as_of is None:
            bucket = int(now // CACHE_TIME_BUCKET_SECONDS)
            cache_key = ("q", digest, params.limit, bucket)
            hit = self.store.cache.get(cache_key)
            if isinstance(hit, QueryResult):
                return msgspec.structs.replace(hit, query_id=new_query_id())
        generation = self.store.cache.generation
        resolved = self.resolve_key(subject, predicate, params, lens, lsn_bound, now)
        offset = cursor.offset if cursor else 0
        result = self.page(subject, predicate, lens, resolved, offset, params.limit, digest)
        if cache_key is not None:
            size = 1024 + 700 * len(result.claims)
            self.store.cache.put(
                cache_key, result, (subject, predicate), generation=generation, size_bytes=size
            )
        return result

    def page(
        self,
        subject: str,
        predicate: str,
        lens: str,
        resolved: Resolved,
        offset: int,
        limit: int,
        digest: str,
    ) -> QueryResult:
        """One page of a resolved (subject, predicate): claims in lens order."""
        res = resolved.resolution
        by_id = {row.id: row for row in resolved.selection.rows}
        weights = {r.id: r.weight for r in res.ranked}
        page_ids = [r.id for r in res.ranked[offset : offset + limit]]
        wanted = [by_id[i] for i in page_ids]
        if res.winner is not None and res.winner not in page_ids:
            wanted.append(by_id[res.winner])
        views = {
            v.id: v
            for v in claim_views(
                self.store, wanted, weights, resolved.lsn_bound, self.engine.applied_lsn
            )
        }
        more = offset + limit < len(res.ranked)
        next_cursor = None
        if more:
            next_cursor = encode_cursor(
                Cursor(1, digest, resolved.lsn_bound, resolved.now, offset=offset + limit)
            )
        return QueryResult(
            query_id=new_query_id(),
            subject=subject,
            predicate=predicate,
            lens=lens,
            resolution=resolution_view(res, views.get(res.winner or "")),
            claims=[views[i] for i in page_ids],
            source_warnings=source_warnings(self.store, resolved.selection.tainted),
            next_cursor=next_cursor,
            as_of_lsn=resolved.lsn_bound,
        )

    def _multi(self, params: QueryParams, lens: str, digest: str) -> QueryResult:
        cursor, lsn_bound, now = self._snapshot(params, digest)
        prefix = params.subject_prefix is not None
        subject = params.subject_prefix if prefix else params.subject
        assert subject is not None
        after = None
        if cursor is not None and cursor.after_subject is not None:
            after = (cursor.after_subject, cursor.after_predicate or "")
        limit = min(params.limit, MAX_GROUPS_PER_PAGE)
        keys = self.store.subject_predicates(
            subject, params.predicate, prefix=prefix, after=after, limit=limit + 1
        )
        more = len(keys) > limit
        keys = keys[:limit]
        groups: list[GroupResult] = []
        warnings: list[SourceWarning] = []
        for s, p in keys:
            resolved = self.resolve_key(s, p, params, lens, lsn_bound, now)
            if resolved.resolution.candidates_count == 0 and not resolved.selection.tainted:
                continue
            winner = resolved.resolution.winner
            winner_view = None
            if winner is not None:
                row = next(r for r in resolved.selection.rows if r.id == winner)
                weights = {r.id: r.weight for r in resolved.resolution.ranked}
                winner_view = claim_views(
                    self.store, [row], weights, lsn_bound, self.engine.applied_lsn
                )[0]
            resolution = resolution_view(resolved.resolution, winner_view)
            groups.append(GroupResult(subject=s, predicate=p, resolution=resolution))
            warnings.extend(source_warnings(self.store, resolved.selection.tainted))
        next_cursor = None
        if more and keys:
            last = keys[-1]
            next_cursor = encode_cursor(
                Cursor(1, digest, lsn_bound, now, after_subject=last[0], after_predicate=last[1])
            )
        return QueryResult(
            query_id=new_query_id(),
            subject=params.subject,
            predicate=params.predicate,
            lens=lens,
            resolution=None,
            claims=[],
            source_warnings=warnings,
            next_cursor=next_cursor,
            subject_prefix=params.subject_prefix,
            results=groups,
            as_of_lsn=lsn_bound,
        )

    def skeptic(
        self, subject: str, predicate: str, *, asker: str | None = None, **filters: object
    ) -> SkepticResult:
        started = time.perf_counter()
        params = QueryParams(subject=subject, predicate=predicate, lens="skeptic", **filters)  # type: ignore[arg-type]
        validate_params(params, max_limit=self.max_limit)
        _, lsn_bound, now = self._snapshot(params, "")
        resolved = self.resolve_key(subject, predicate, params, "skeptic", lsn_bound, now)
        res = resolved.resolution
        result = SkepticResult(
            query_id=new_query_id(),
            subject=subject,
            predicate=predicate,
            status=res.status,
            conflict_score=res.conflict_score,
            candidates_count=res.candidates_count,
            claims=skeptic_claims(self.store, resolved.selection.rows, res),
            source_warnings=source_warnings(self.store, resolved.selection.tainted),
        )
        contributions = [Contribution(r.id, r.weight) for r in res.ranked]
        self._record_audit(
            result.query_id,
            "skeptic",
            "skeptic",
            subject,
            predicate,
            params,
            None,
            contributions,
            asker,
            started,
        )
        return result

    # -- audit ---------------------------------------------------------------------

    def _record_audit(
        self,
        query_id: str,
        endpoint: str,
        lens: str,
        subject: str | None,
        predicate: str | None,
        params: QueryParams,
        winner: str | None,
        contributions: list[Contribution],
        asker: str | None,
        started: float,
    ) -> None:
        self.audit.record(
            AuditRecord(
                query_id=query_id,
                at=self.engine.clock.time(),
                agent_id=asker,
                endpoint=endpoint,
                lens=lens,
                subject=subject,
                predicate=predicate,
                parameters=audit_parameters(params),
                winner=winner,
                contributions=contributions,
                duration_ms=(time.perf_counter() - started) * 1000.0,
            )
        )

    def audit_record(self, query_id: str) -> AuditRecord:
        rec = self.audit.get(query_id)
        if rec is None:
            raise NotFoundError(
                f"query {query_id} not found in the audit log", code="query_not_found"
            )
        return rec
