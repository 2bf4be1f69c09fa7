"""The read side: candidate selection, lens application, caching, views and audit."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Sequence
from typing import Final

import msgspec

from stemedb.config import Config, LensSettings
from stemedb.engine import Engine
from stemedb.errors import NotFoundError, ValidationError
from stemedb.lens import DEFAULT_LENS, LENS_NAMES, LensConfig, Resolution, resolve
from stemedb.model.records import Assertion, Signature
from stemedb.query.audit import PRUNE_INTERVAL_SECONDS, AuditLog
from stemedb.query.cursor import Cursor, decode_cursor, encode_cursor, query_digest
from stemedb.query.params import QueryParams, validate_params
from stemedb.query.provenance import Provenance
from stemedb.query.search import suggestions
from stemedb.query.selection import Selection, select
from stemedb.query.views import ViewKeeper
from stemedb.store.protocol import Store
from stemedb.store.rows import CandidateRow
from stemedb.wire import (
    AuditRecord,
    ClaimView,
    Contribution,
    GroupResult,
    QueryResult,
    ResolutionView,
    SkepticClaim,
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
        self._audit(result, params, lens, asker, endpoint, started)
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
        views = {v.id: v for v in self.claim_views(wanted, weights, resolved.lsn_bound)}
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
            resolution=self._resolution_view(res, views.get(res.winner or "")),
            claims=[views[i] for i in page_ids],
            source_warnings=self.warnings(resolved.selection.tainted),
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
                winner_view = self.claim_views([row], weights, lsn_bound)[0]
            resolution = self._resolution_view(resolved.resolution, winner_view)
            groups.append(GroupResult(subject=s, predicate=p, resolution=resolution))
            warnings.extend(self.warnings(resolved.selection.tainted))
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

    @staticmethod
    def _resolution_view(res: Resolution, winner: ClaimView | None) -> ResolutionView:
        return ResolutionView(
            winner=winner,
            resolution_confidence=res.resolution_confidence,
            conflict_score=res.conflict_score,
            candidates_count=res.candidates_count,
            status=res.status,
            deciding_tier=res.deciding_tier,
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
        by_id = {row.id: row for row in resolved.selection.rows}
        records = self.store.assertions_by_lsn([by_id[g.claim_ids[0]].lsn for g in res.groups])
        claims = []
        for group in res.groups:
            best = by_id[group.claim_ids[0]]
            claims.append(
                SkepticClaim(
                    value=records[best.lsn].object,
                    support_share=group.share,
                    weight=group.weight,
                    tier=group.best_tier,
                    source_class=best.source_class,
                    claim_ids=list(group.claim_ids),
                )
            )
        result = SkepticResult(
            query_id=new_query_id(),
            subject=subject,
            predicate=predicate,
            status=res.status,
            conflict_score=res.conflict_score,
            candidates_count=res.candidates_count,
            claims=claims,
            source_warnings=self.warnings(resolved.selection.tainted),
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

    # -- building blocks -------------------------------------------------------------

    def claim_views(
        self, rows: Sequence[CandidateRow], weights: dict[str, float], lsn_bound: int
    ) -> list[ClaimView]:
        """Claims as read at ``lsn_bound``: an ``as_of`` read shows no co-signature, vote,
        retraction or supersession committed after it."""
        records = self.store.assertions_by_lsn([r.lsn for r in rows])
        retracted = self.store.retracted_sources()
        votes: dict[int, float] = {}
        if lsn_bound < self.engine.applied_lsn:
            votes = self.store.vote_weights_at([r.lsn for r in rows], lsn_bound)
        out = []
        for row in rows:
            record = records[row.lsn]
            signatures = list(record.signatures)
            if len(row.signers) > len(signatures):
                signatures = [
                    Signature(s.agent_id, s.signature, s.signed_at)
                    for s in self.store.signatures(row.lsn)
                    if s.lsn <= lsn_bound
                ]
            row = msgspec.structs.replace(
                row,
                vote_weight=votes.get(row.lsn, row.vote_weight),
                tainted_by=row.tainted_by
                if retracted.get(row.tainted_by or "", lsn_bound + 1) <= lsn_bound
                else None,
                superseded_lsn=row.superseded_lsn
                if (row.superseded_lsn or lsn_bound + 1) <= lsn_bound
                else None,
            )
            out.append(self._view(row, record, signatures, weights.get(row.id, 0.0), retracted))
        return out

    @staticmethod
    def _view(
        row: CandidateRow,
        a: Assertion,
        signatures: list[Signature],
        weight: float,
        retracted: dict[str, int],
    ) -> ClaimView:
        return ClaimView(
            id=row.id,
            lsn=row.lsn,
            subject=a.subject,
            predicate=a.predicate,
            object=a.object,
            confidence=a.confidence,
            source_hash=a.source_hash,
            source_class=row.source_class,
            epoch=a.epoch,
            parent=a.parent,
            lifecycle=a.lifecycle,
            valid_from=a.valid_from,
            valid_to=a.valid_to,
            timestamp=a.timestamp,
            signatures=signatures,
            weight=weight,
            vote_weight=row.vote_weight,
            retracted_source=row.tainted_by is not None and row.tainted_by in retracted,
            superseded=row.superseded_lsn is not None,
        )

    def warnings(self, tainted: Sequence[CandidateRow]) -> list[SourceWarning]:
        reasons: dict[str, str | None] = {}
        out = []
        for row in tainted:
            source_hash = row.tainted_by
            assert source_hash is not None
            if source_hash not in reasons:
                source = self.store.source(source_hash)
                reasons[source_hash] = source.retracted_reason if source else None
            kind = "retracted_source" if row.source_hash == source_hash else "retracted_ancestor"
            out.append(
                SourceWarning(
                    assertion_id=row.id,
                    source_hash=source_hash,
                    kind=kind,
                    reason=reasons[source_hash],
                )
            )
        return out

    # -- audit ---------------------------------------------------------------------

    def _audit(
        self,
        result: QueryResult,
        params: QueryParams,
        lens: str,
        asker: str | None,
        endpoint: str,
        started: float,
    ) -> None:
        if result.resolution is not None:
            winner = result.resolution.winner
            winners = [winner.id] if winner else []
            contributions = [Contribution(c.id, c.weight) for c in result.claims]
        else:
            winners = [g.resolution.winner.id for g in result.results or [] if g.resolution.winner]
            contributions = [
                Contribution(g.resolution.winner.id, g.resolution.winner.weight)
                for g in result.results or []
                if g.resolution.winner
            ]
        self._record_audit(
            result.query_id,
            endpoint,
            lens,
            result.subject or result.subject_prefix,
            result.predicate,
            params,
            winners[0] if len(winners) == 1 else None,
            contributions,
            asker,
            started,
        )

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
        parameters: dict[str, object] = {}
        for name, value in msgspec.structs.asdict(params).items():
            # Unset knobs are left out: None, False, 0 and empty lists (not "").
            if value is None or (not value and type(value) is not str) or name == "cursor":
                continue
            parameters[name] = list(value) if type(value) is tuple else value
        self.audit.record(
            AuditRecord(
                query_id=query_id,
                at=self.engine.clock.time(),
                agent_id=asker,
                endpoint=endpoint,
                lens=lens,
                subject=subject,
                predicate=predicate,
                parameters=parameters,
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
