"""Query-string parsing with errors that name the parameter.

``QueryString`` hands out typed values and, at ``finish()``, refuses parameters that no
one asked for: a typo (``lense=recency``) is a 400, not a silently ignored filter.
Lists (``lifecycle``, ``source_class``) are comma-separated and may also repeat.
"""

from __future__ import annotations

import math
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from stemedb.api.http.routing import Param
from stemedb.errors import ValidationError
from stemedb.query.params import QueryParams
from stemedb.wire import QuerySpec

TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS: Final = frozenset({"false", "0", "no", "off"})


class QueryString:
    def __init__(self, request: Request) -> None:
        # One pass over the query string into name -> values, parsed as Starlette's
        # ``request.query_params`` would (latin-1 bytes, percent-decoded as UTF-8, blank
        # values kept) without building its multidict; a query reads ~15 names.
        params: dict[str, list[str]] = {}
        raw: bytes = request.scope["query_string"]
        if raw:
            for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
                params.setdefault(name, []).append(value)
        self._params = params
        self._used: set[str] = set()

    def _one(self, name: str) -> str | None:
        self._used.add(name)
        values = self._params.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise ValidationError(
                name,
                "repeated",
                f"{name} may be given once",
                code="invalid_parameter",
            )
        return values[0]

    def text(self, name: str) -> str | None:
        return self._one(name)

    def number(self, name: str) -> float | None:
        raw = self._one(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(
                name, "type", f"{name} must be a number", code="invalid_parameter"
            ) from None
        if not math.isfinite(value):
            raise ValidationError(
                name,
                "not_finite",
                f"{name} must be finite",
                code="invalid_parameter",
            )
        return value

    def integer(self, name: str, default: int) -> int:
        raw = self._one(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ValidationError(
                name, "type", f"{name} must be an integer", code="invalid_parameter"
            ) from None

    def flag(self, name: str) -> bool:
        raw = self._one(name)
        if raw is None:
            return False
        lowered = raw.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise ValidationError(
            name,
            "type",
            f"{name} must be true or false",
            code="invalid_parameter",
        )

    def words(self, name: str) -> tuple[str, ...]:
        self._used.add(name)
        out: list[str] = []
        for value in self._params.get(name, ()):
            out.extend(part.strip() for part in value.split(",") if part.strip())
        return tuple(out)

    def finish(self) -> None:
        for name in self._params:
            if name not in self._used:
                raise ValidationError(
                    name,
                    "unknown_parameter",
                    f"unknown query parameter {name!r}",
                    code="unknown_parameter",
                )


def query_params(qs: QueryString) -> QueryParams:
    """The ``GET /v1/query`` parameters of API.md."""
    params = QueryParams(
        subject=qs.text("subject"),
        subject_prefix=qs.text("subject_prefix"),
        predicate=qs.text("predicate"),
        lens=qs.text("lens"),
        as_of=qs.number("as_of"),
        valid_at=qs.number("valid_at"),
        since=qs.number("since"),
        lifecycle=qs.words("lifecycle"),
        epoch=qs.text("epoch"),
        source_class=qs.words("source_class"),
        agent_id=qs.text("agent_id"),
        include_retracted=qs.flag("include_retracted"),
        include_superseded=qs.flag("include_superseded"),
        include_quarantined=qs.flag("include_quarantined"),
        max_stale_seconds=qs.number("max_stale_seconds"),
        limit=qs.integer("limit", 100),
        cursor=qs.text("cursor"),
    )
    qs.finish()
    return params


def spec_params(spec: QuerySpec) -> QueryParams:
    """One ``POST /v1/query`` item as QueryParams."""
    return QueryParams(
        subject=spec.subject,
        subject_prefix=spec.subject_prefix,
        predicate=spec.predicate,
        lens=spec.lens,
        as_of=spec.as_of,
        valid_at=spec.valid_at,
        since=spec.since,
        lifecycle=tuple(spec.lifecycle),
        epoch=spec.epoch,
        source_class=tuple(spec.source_class),
        agent_id=spec.agent_id,
        include_retracted=spec.include_retracted,
        include_superseded=spec.include_superseded,
        include_quarantined=spec.include_quarantined,
        max_stale_seconds=spec.max_stale_seconds,
        limit=spec.limit,
        cursor=spec.cursor,
    )


QUERY_PARAM_DOCS: Final = (
    ("subject", str, "exact subject (or subject_prefix)"),
    ("subject_prefix", str, "every subject starting with this (byte range scan)"),
    ("predicate", str, "predicate"),
    ("lens", str, "recency|confidence|consensus|votes|authority|layered|skeptic"),
    ("as_of", float, "transaction time (unix seconds): what the database knew then"),
    ("valid_at", float, "valid time (unix seconds): claims holding in the world then"),
    ("since", float, "only claims asserted at or after (unix seconds)"),
    ("lifecycle", str, "comma-separated lifecycles (default proposed,under_review,approved)"),
    ("epoch", str, "only claims of this epoch (hex id)"),
    ("source_class", str, "comma-separated source classes"),
    ("agent_id", str, "only claims signed by this agent (hex public key)"),
    ("include_retracted", bool, "keep claims citing retracted sources"),
    ("include_superseded", bool, "keep superseded claims"),
    ("include_quarantined", bool, "keep claims held in quarantine (pending or rejected)"),
    ("max_stale_seconds", float, "accept a materialized view this old (answer says stale)"),
    ("limit", int, "claims per page, 1..1000 (default 100)"),
    ("cursor", str, "next_cursor of the previous page"),
)

MIN_LSN_PARAM: Final = Param(
    "min_lsn",
    int,
    "read your writes: wait (storage.min_lsn_wait_seconds, then 503 lsn_not_reached) until"
    " this node's reads reflect this LSN (a write's answer `lsn`, through any node)",
)
