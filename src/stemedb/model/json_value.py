"""The rules of a ``json`` object value (ADR 0019): a JSON object or array, at most
``JSON_VALUE_MAX_DEPTH`` levels deep and ``JSON_VALUE_MAX_BYTES`` of canonical JSON (JCS:
what is hashed and signed, not what was sent), and nothing JCS cannot carry."""

from __future__ import annotations

from typing import Final, cast

from stemedb.errors import ValidationError
from stemedb.model.canonical import canonical_json

JSON_VALUE_MAX_BYTES: Final[int] = 64 * 1024
"""Cap of a ``json`` object value: bytes of its canonical JSON (JCS)."""
JSON_VALUE_MAX_DEPTH: Final[int] = 32
"""Deepest nesting of arrays/objects in a ``json`` value (the value itself is level 1)."""


def check_json_value(value: object, field: str = "object.value") -> int:
    """A ``json`` value: a JSON object or array, nested at most ``JSON_VALUE_MAX_DEPTH``
    deep, whose canonical JSON is at most ``JSON_VALUE_MAX_BYTES``; returns that size.
    A value JCS rejects (integer beyond ±(2**53 - 1), lone surrogate …) names its path."""
    if type(value) is not dict and type(value) is not list:
        raise ValidationError(
            field, "type_mismatch", f"{field} must be a JSON object or array for type 'json'"
        )
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > JSON_VALUE_MAX_DEPTH:
            raise ValidationError(
                field,
                "too_deep",
                f"{field} nests arrays/objects more than {JSON_VALUE_MAX_DEPTH} levels deep",
            )
        children = item.values() if isinstance(item, dict) else cast("list[object]", item)
        stack.extend((c, depth + 1) for c in children if type(c) is dict or type(c) is list)
    try:
        size = len(canonical_json(value))
    except ValidationError as exc:
        path = exc.field
        inner = "" if path == "$" else path if path.startswith("[") else f".{path}"
        where = f"{field}{inner}"
        raise ValidationError(where, exc.rule, f"{where}: {exc.message}") from None
    if size > JSON_VALUE_MAX_BYTES:
        raise ValidationError(
            field,
            "too_long",
            f"{field} is {size} bytes of canonical JSON; the limit is {JSON_VALUE_MAX_BYTES}",
        )
    return size


__all__ = ["JSON_VALUE_MAX_BYTES", "JSON_VALUE_MAX_DEPTH", "check_json_value"]
