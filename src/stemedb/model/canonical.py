"""RFC 8785 (JCS) canonical JSON, specialised for StemeDB records.

The output is byte-identical to ``rfc8785.dumps`` (a property test pins this) but
several times faster on our records: the value is walked once in Python to check
integers, render floats the ECMAScript way (as ``msgspec.Raw``) and order awkward
keys; msgspec then writes the bytes. msgspec's string escaping is exactly JCS's:
``\\b \\t \\n \\f \\r`` short escapes, other code points below U+0020 as lowercase
``\\u00xx``, ``"`` and ``\\`` escaped, everything else literal UTF-8.

Accepted values: ``dict`` with ``str`` keys, ``list``/``tuple``, ``str``, ``int``
(within ±(2**53 - 1), the I-JSON safe range), finite ``float``, ``bool``, ``None``.
Anything else raises ``ValidationError`` naming the JSON path of the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

import msgspec
import rfc8785

from stemedb.errors import ValidationError

JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)

MAX_SAFE_INTEGER: Final[int] = 2**53 - 1
"""Largest integer JCS (I-JSON) can carry exactly; ``-MAX_SAFE_INTEGER`` is the smallest."""


def exact_double(value: int) -> float | None:
    """``value`` as the IEEE-754 double that equals it, or None when no double does
    (``2**53 + 1``, ``10**400``): JCS writes every number as a double."""
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if as_float == value else None


_FAST_FLOAT_MIN: Final[float] = 1e-4
_FAST_FLOAT_MAX: Final[float] = 1e16
_ZERO: Final[msgspec.Raw] = msgspec.Raw(b"0")

_sorted_encode = msgspec.json.Encoder(order="sorted").encode
_plain_encode = msgspec.json.Encoder().encode


class _Reject(Exception):
    """Internal: a value JCS cannot carry. Turned into ValidationError with its path."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def _float_text(x: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a finite, non-zero float (JCS §3.2.2.3)."""
    ax = -x if x < 0 else x
    if _FAST_FLOAT_MIN <= ax < _FAST_FLOAT_MAX:
        # Python's repr gives the shortest round-trip digits in plain decimal notation
        # in this range, exactly as ES6 does, except that it adds ".0" to integers.
        text = repr(x)
        return text[:-2] if text.endswith(".0") else text
    return rfc8785.dumps(x).decode("ascii")


def _float_raw(x: float) -> msgspec.Raw:
    if x - x != 0.0:  # NaN or ±Infinity (x - x is NaN exactly then)
        raise _Reject("not_finite", f"number {x!r} is not finite; JSON cannot carry it")
    if x == 0.0:  # also -0.0, which JCS writes as 0
        return _ZERO
    return msgspec.Raw(_float_text(x).encode("ascii"))


def json_number(x: float) -> msgspec.Raw:
    """A float rendered for JCS, ready to embed in a value given to ``encode_prepared``.

    Raises ``ValidationError(field="$", rule="not_finite")`` for NaN and ±Infinity.
    """
    try:
        return _float_raw(x)
    except _Reject as exc:
        raise ValidationError("$", exc.rule, exc.message) from None


def _needs_utf16_order(keys: Mapping[str, object]) -> bool:
    for key in keys:
        if type(key) is not str:
            raise _Reject("key_not_string", f"object key {key!r} is not a string")
        if not key.isascii():
            return True
    return False


def _prepare(value: object) -> object:
    """Return ``value`` with floats as ``Raw`` and every rule checked (raises ``_Reject``)."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return value
        raise _Reject(
            "integer_out_of_range",
            f"integer {value} is outside ±(2**53 - 1), the range JSON numbers carry exactly",
        )
    if t is float:
        return _float_raw(value)  # type: ignore[arg-type]
    if t is dict:
        mapping: dict[str, object] = value  # type: ignore[assignment]
        if _needs_utf16_order(mapping):
            return msgspec.Raw(_encode_utf16_ordered(mapping))
        return {k: _prepare(v) for k, v in mapping.items()}
    if t is list or t is tuple:
        return [_prepare(v) for v in value]  # type: ignore[attr-defined]
    return _prepare_subclass(value)


def _prepare_subclass(value: object) -> object:
    """Slow path for subclasses of the JSON types (str/int enums, OrderedDict …)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _prepare(int(value))
    if isinstance(value, float):
        return _prepare(float(value))
    if isinstance(value, str):
        return str.__str__(value)  # not str(): an Enum's __str__ is its name
    if isinstance(value, Mapping):
        return _prepare(dict(value))
    if isinstance(value, list | tuple):
        return _prepare(list(value))
    raise _Reject("unsupported_type", f"a {type(value).__name__} cannot be encoded as JSON")


def _encode_utf16_ordered(mapping: Mapping[str, object]) -> bytes:
    """An object whose keys need JCS's UTF-16 code-unit order (rare: non-ASCII keys)."""
    items = sorted(mapping.items(), key=lambda kv: kv[0].encode("utf-16-be", "surrogatepass"))
    parts = [_plain_encode(k) + b":" + _sorted_encode(_prepare(v)) for k, v in items]
    return b"{" + b",".join(parts) + b"}"


def encode_prepared(value: object) -> bytes:
    """Encode a value already made JCS-safe (floats as ``json_number`` Raw, ints in range,
    ASCII keys). The trusted fast path for ``model.ids``; most callers want ``canonical_json``."""
    return _sorted_encode(value)


def canonical_json(value: JsonValue) -> bytes:
    """The RFC 8785 canonical JSON bytes of ``value``.

    Raises ``ValidationError`` (field = JSON path of the bad value) for NaN/Infinity,
    integers outside ±(2**53 - 1), non-string keys, lone surrogates or foreign types.
    """
    try:
        return _sorted_encode(_prepare(value))
    except (_Reject, UnicodeEncodeError, msgspec.EncodeError):
        field, rule, message = _locate_error(value, "")
        if not rule:  # unreachable unless _prepare and _locate_error disagree
            rule, message = "not_json", "value cannot be encoded as canonical JSON"
        raise ValidationError(field or "$", rule, message) from None


def _locate_error(value: object, path: str) -> tuple[str, str, str]:
    """Slow walk that finds the JSON path of the first value ``canonical_json`` rejects."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                return path or "$", "key_not_string", f"object key {key!r} is not a string"
            key_path = f"{path}.{key}" if path else key
            if _has_lone_surrogate(key):
                return key_path, "invalid_unicode", "object key contains a lone surrogate"
            found = _locate_error(item, key_path)
            if found[1]:
                return found
        return path, "", ""
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _locate_error(item, f"{path}[{index}]")
            if found[1]:
                return found
        return path, "", ""
    if isinstance(value, str):
        if _has_lone_surrogate(value):
            return path, "invalid_unicode", "string contains a lone surrogate (not valid UTF-8)"
        return path, "", ""
    try:
        _prepare(value)
    except _Reject as exc:
        return path, exc.rule, exc.message
    return path, "", ""


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
