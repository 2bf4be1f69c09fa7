"""Times typed into the dashboard's forms: ISO 8601 (``2026-12-07T10:00``, UTC unless
an offset is given, as ``datetime-local`` inputs send it) or Unix seconds."""

from __future__ import annotations

import datetime

from stemedb.errors import ValidationError


def parse_time(field: str, raw: str) -> float | None:
    """``raw`` as Unix seconds; None when empty."""
    text = raw.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            field, "time", f"{field} must be ISO 8601 (2026-12-07T10:00:00Z) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def iso_minutes(seconds: float | None) -> str:
    """``seconds`` as a ``datetime-local`` input's value (UTC)."""
    if seconds is None:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


__all__ = ["iso_minutes", "parse_time"]
