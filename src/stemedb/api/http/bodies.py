"""Request bodies: bounded reading and strict msgspec decoding with field-naming errors.

The size limit is checked twice: against ``Content-Length`` before reading, and
against the bytes actually received while streaming (a lying or absent header cannot
push more than ``max_body_bytes`` into memory). Decoding is strict (no str→int
coercion); every record struct forbids unknown fields. msgspec's messages name a JSON
path (``$.signatures[0].agent_id``), which becomes the envelope's ``details.field``.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

import msgspec
from starlette.requests import Request

from stemedb.errors import SerializationError, StemeError, ValidationError

T = TypeVar("T")

_AT_PATH: Final = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_MISSING: Final = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_TYPE: Final = re.compile(r"^Expected `")


def body_too_large(max_bytes: int) -> ValidationError:
    return ValidationError(
        "body",
        "too_large",
        f"the request body exceeds api.max_body_bytes ({max_bytes} bytes)",
        code="body_too_large",
        status=413,
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ValidationError(
                "content-length", "invalid", "Content-Length is not a number"
            ) from None
        if size > max_bytes:
            raise body_too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise body_too_large(max_bytes)
        if chunk:
            chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _join(prefix: str, path: str) -> str:
    path = path.lstrip(".")
    if not prefix:
        return path or "body"
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def translate_decode_error(exc: msgspec.MsgspecError, prefix: str = "") -> StemeError:
    """A msgspec error as our 400: ValidationError naming the field, or a
    SerializationError for JSON that does not parse."""
    if not isinstance(exc, msgspec.ValidationError):
        where = prefix or "body"
        return SerializationError(
            f"{where}: {exc}", code="malformed_body", details={"field": where}
        )
    text = str(exc)
    match = _AT_PATH.match(text)
    what, path = (match["what"], match["path"]) if match else (text, "")
    field = _join(prefix, path)
    if unknown := _UNKNOWN.search(what):
        return ValidationError(
            _join(field if field != "body" else "", unknown["name"]),
            "unknown_field",
            f"unknown field `{unknown['name']}`" + (f" in {field}" if path or prefix else ""),
            code="unknown_field",
        )
    if missing := _MISSING.search(what):
        name = _join(field if field != "body" else "", missing["name"])
        return ValidationError(name, "required", f"{name} is required", code="missing_field")
    rule = "type" if _TYPE.match(what) else "invalid"
    return ValidationError(field, rule, f"{field}: {what}")


def decode(body: bytes, decoder: msgspec.json.Decoder[T], prefix: str = "") -> T:
    """The one body decoder of every route: any body that is not the JSON the route
    takes is a 400, never a 500 — invalid UTF-8 (``malformed_body``), nesting deeper
    than the decoder's recursion limit (``too_deep``, about 1,000 levels; every route's
    records are a few levels deep), or a schema mismatch (``translate_decode_error``)."""
    try:
        return decoder.decode(body)
    except DECODE_ERRORS as exc:
        raise body_error(exc, prefix) from None


DECODE_ERRORS: Final = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)


def body_error(exc: Exception, prefix: str = "") -> StemeError:
    """One of ``DECODE_ERRORS`` as our 400."""
    where = prefix or "body"
    if isinstance(exc, UnicodeDecodeError):
        return SerializationError(
            f"{where}: not valid UTF-8 (byte {exc.start}: {exc.reason})",
            code="malformed_body",
            details={"field": where},
        )
    if isinstance(exc, RecursionError):
        return SerializationError(
            f"{where}: JSON nested too deeply", code="too_deep", details={"field": where}
        )
    assert isinstance(exc, msgspec.MsgspecError)
    return translate_decode_error(exc, prefix)


async def read_json(request: Request, decoder: msgspec.json.Decoder[T], max_bytes: int) -> T:
    body = await read_body(request, max_bytes)
    if not body:
        raise SerializationError(
            "the request body is empty; send JSON", code="empty_body", details={"field": "body"}
        )
    return decode(body, decoder)
