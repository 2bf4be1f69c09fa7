"""Query parameters (API.md ``GET /v1/query``) and their validation."""

from __future__ import annotations

import math
import re
from typing import Final

import msgspec

from stemedb.errors import ValidationError
from stemedb.lens import LENS_NAMES
from stemedb.model.records import LIFECYCLES, SOURCE_CLASSES
from stemedb.model.signing import is_hex64

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
DEFAULT_LIFECYCLES: Final = ("proposed", "under_review", "approved")
MAX_SUBJECT_BYTES: Final = 512
MAX_PREDICATE_BYTES: Final = 256


class QueryParams(msgspec.Struct, frozen=True, kw_only=True):
    """One read. Exactly one of ``subject`` / ``subject_prefix``."""

    subject: str | None = None
    subject_prefix: str | None = None
    predicate: str | None = None
    lens: str | None = None  # None -> the configured default lens
    as_of: float | None = None
    valid_at: float | None = None
    since: float | None = None
    lifecycle: tuple[str, ...] = ()
    epoch: str | None = None
    source_class: tuple[str, ...] = ()
    agent_id: str | None = None
    include_retracted: bool = False
    include_superseded: bool = False
    include_quarantined: bool = False
    max_stale_seconds: float | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def is_single(self) -> bool:
        """Exact subject and predicate: one resolution."""
        return self.subject is not None and self.predicate is not None

    @property
    def is_plain(self) -> bool:
        """No filter but subject and predicate: answerable from a materialized view."""
        return (
            self.is_single
            and self.as_of is None
            and self.valid_at is None
            and self.since is None
            and not self.lifecycle
            and self.epoch is None
            and not self.source_class
            and self.agent_id is None
            and not self.include_retracted
            and not self.include_superseded
            and not self.include_quarantined
        )


_CONTROL_CHARACTER: Final = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_time(field: str, value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValidationError(field, "must be a finite, non-negative unix time")


def check_text(field: str, value: str | None, max_bytes: int, *, allow_empty: bool = False) -> None:
    if value is None:
        return
    size = len(value.encode("utf-8", "surrogatepass"))
    if (size == 0 and not allow_empty) or size > max_bytes:
        raise ValidationError(field, f"must be 1-{max_bytes} bytes")
    if _CONTROL_CHARACTER.search(value):
        raise ValidationError(field, "must not contain control characters")


def validate_params(p: QueryParams, *, max_limit: int = MAX_LIMIT) -> None:
    """Raise ValidationError naming the first bad parameter."""
    if (p.subject is None) == (p.subject_prefix is None):
        raise ValidationError("subject", "exactly one of subject or subject_prefix is required")
    check_text("subject", p.subject, MAX_SUBJECT_BYTES)
    check_text("subject_prefix", p.subject_prefix, MAX_SUBJECT_BYTES, allow_empty=True)
    check_text("predicate", p.predicate, MAX_PREDICATE_BYTES)
    if p.lens is not None and p.lens not in LENS_NAMES:
        raise ValidationError(
            "lens", f"unknown lens {p.lens!r}; one of {', '.join(LENS_NAMES)}", code="unknown_lens"
        )
    for field in ("as_of", "valid_at", "since"):
        _check_time(field, getattr(p, field))
    if p.max_stale_seconds is not None and not (0 <= p.max_stale_seconds < math.inf):
        raise ValidationError("max_stale_seconds", "must be a non-negative number")
    for value in p.lifecycle:
        if value not in LIFECYCLES:
            raise ValidationError("lifecycle", f"unknown lifecycle {value!r}")
    for value in p.source_class:
        if value not in SOURCE_CLASSES:
            raise ValidationError("source_class", f"unknown source class {value!r}")
    if p.epoch is not None and not is_hex64(p.epoch):
        raise ValidationError("epoch", "must be 64 lowercase hex characters")
    if p.agent_id is not None and not is_hex64(p.agent_id):
        raise ValidationError("agent_id", "must be 64 lowercase hex characters")
    if not 1 <= p.limit <= max_limit:
        raise ValidationError(
            "limit", f"must be between 1 and {max_limit}", code="limit_out_of_range"
        )
