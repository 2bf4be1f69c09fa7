"""How claims are keyed, whatever the backend: equal values, subject ranges."""

from __future__ import annotations

import hashlib

from stemedb.model.canonical import canonical_json
from stemedb.model.records import ObjectValue


def value_key(obj: ObjectValue) -> str:
    """A canonical key of an object value: equal keys mean the claims agree.

    A number's key is its float repr (``3`` and ``3.0`` agree, as they did when every
    number was a float); a ``json`` value's is the SHA-256 of its canonical JSON (JCS),
    so two values agree exactly when their canonical bytes are equal (ADR 0019)."""
    value = obj.value
    if obj.type == "number":
        return f"number:{float(value)!r}"  # type: ignore[arg-type]
    if obj.type == "boolean":
        return "boolean:true" if value else "boolean:false"
    if obj.type == "json":
        return "json:" + hashlib.sha256(canonical_json(value)).hexdigest()
    return f"{obj.type}:{value}"


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code-point
    order, which is the byte order of UTF-8), or None when there is none.

    ``prefix + U+10FFFF`` is not it: ``prefix + U+10FFFF + "z"`` sorts above it."""
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if point <= 0x10FFFF:
            if 0xD800 <= point <= 0xDFFF:  # surrogates are not UTF-8 text
                point = 0xE000
            return "".join(chars) + chr(point)
    return None
