"""The error envelope: the body of every non-2xx answer (API.md "Errors")."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    type: str
    message: str
    details: dict[str, Any]
    retryable: bool


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every non-2xx answer."""

    error: ErrorBody
    request_id: str


__all__ = ["ErrorBody", "ErrorEnvelope"]
