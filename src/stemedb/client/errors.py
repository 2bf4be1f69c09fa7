"""What the client raises, grouped by failure kind (the httpx habit).

- :class:`ApiError` — the server answered with a non-2xx error envelope. The concrete
  class is chosen by the envelope's ``type`` and is *also* a subclass of the matching
  :mod:`stemedb.errors` class, so ``except stemedb.errors.NotFoundError`` and
  ``except stemedb.client.NotFoundError`` both work. Every one carries ``code``,
  ``status``, ``details``, ``retryable``, ``request_id`` and ``retry_after_seconds``.
- :class:`NetworkError` — no answer at all (refused connection, timeout, reset); the
  httpx exception is chained as ``__cause__``. ``status`` is 0 and ``request_id`` is
  the id the client sent.

Client-side mistakes (no key to sign with, a bad argument) raise
:class:`stemedb.errors.ValidationError` before anything is sent.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from stemedb import errors as base


class ApiError(base.StemeError):
    """The server answered with an error envelope (any non-2xx status)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
        request_id: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        base.StemeError.__init__(
            self, message, code=code, status=status, details=details, retryable=retryable
        )
        self.request_id = request_id
        self.retry_after_seconds = retry_after_seconds
        # ValidationError's own attributes, for the classes that inherit it.
        self.field = str(self.details.get("field", ""))
        self.rule = str(self.details.get("rule", ""))

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message} (code={self.code}, status={self.status})"


class ValidationError(ApiError, base.ValidationError):
    """400/405/413/422: the request breaks a rule; ``field`` names which."""


class SerializationError(ApiError, base.SerializationError):
    """400: the body is not JSON of the right shape; or a 2xx answer did not decode."""


class AuthenticationError(ApiError, base.AuthenticationError):
    """401: missing or unknown API key, or a signature that does not verify."""


class AuthorizationError(ApiError, base.AuthorizationError):
    """403: the key's role forbids it, or the agent's circuit breaker is open."""


class NotFoundError(ApiError, base.NotFoundError):
    """404."""


class ConflictError(ApiError, base.ConflictError):
    """409."""


class RateLimitError(ApiError, base.RateLimitError):
    """429 rate limit (retried automatically, honouring ``Retry-After``)."""


class QuotaError(ApiError, base.QuotaError):
    """429 quota exhausted (retried automatically, honouring ``Retry-After``)."""


class RequestTimeoutError(ApiError, base.RequestTimeoutError):
    """504: the server gave up on the request (envelope type ``TimeoutError``)."""


class StorageError(ApiError, base.StorageError):
    """503/500: storage down, read-only node, disk full."""


class UnavailableError(ApiError, base.UnavailableError):
    """503: not ready (retried automatically)."""


class InternalError(ApiError, base.InternalError):
    """500, or an envelope type this client does not know."""


class NetworkError(base.NetworkError):
    """No answer from the server: connection refused or reset, timeout, bad TLS.

    Also the class of an envelope of type ``NetworkError`` (a proxy's upstream
    failure); then ``status`` and ``request_id`` come from the answer.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
        request_id: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, details=details, retryable=retryable)
        if status == 0:  # no HTTP answer at all
            self.status = 0
        self.request_id = request_id
        self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        return f"NetworkError: {self.message}"


ERROR_CLASSES: Final[dict[str, type[ApiError] | type[NetworkError]]] = {
    "ValidationError": ValidationError,
    "SerializationError": SerializationError,
    "AuthenticationError": AuthenticationError,
    "AuthorizationError": AuthorizationError,
    "NotFoundError": NotFoundError,
    "ConflictError": ConflictError,
    "RateLimitError": RateLimitError,
    "QuotaError": QuotaError,
    "TimeoutError": RequestTimeoutError,
    "StorageError": StorageError,
    "UnavailableError": UnavailableError,
    "InternalError": InternalError,
    "NetworkError": NetworkError,
}


class _EnvelopeError(msgspec.Struct):
    code: str = "unknown_error"
    type: str = "InternalError"
    message: str = ""
    details: dict[str, Any] = {}
    retryable: bool = False


class _Envelope(msgspec.Struct):
    error: _EnvelopeError
    request_id: str | None = None


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(_Envelope)


def error_from_response(
    status: int,
    body: bytes,
    *,
    header_request_id: str | None,
    retry_after_seconds: float | None,
) -> ApiError | NetworkError:
    """The exception for one non-2xx answer. A body that is not our envelope (a proxy's
    HTML page, say) still becomes an error of the status's kind."""
    try:
        envelope = _ENVELOPE_DECODER.decode(body)
    except msgspec.MsgspecError:
        kind = _type_for_status(status)
        text = body[:200].decode("utf-8", "replace").strip()
        return ERROR_CLASSES[kind](
            f"HTTP {status} without an error envelope: {text!r}",
            code="no_envelope",
            status=status,
            retryable=status in (429, 502, 503, 504),
            request_id=header_request_id,
            retry_after_seconds=retry_after_seconds,
        )
    err = envelope.error
    cls = ERROR_CLASSES.get(err.type, InternalError)
    return cls(
        err.message,
        code=err.code,
        status=status,
        details=err.details,
        retryable=err.retryable,
        request_id=envelope.request_id or header_request_id,
        retry_after_seconds=retry_after_seconds,
    )


def _type_for_status(status: int) -> str:
    return {
        400: "ValidationError",
        401: "AuthenticationError",
        403: "AuthorizationError",
        404: "NotFoundError",
        409: "ConflictError",
        413: "ValidationError",
        422: "ValidationError",
        429: "RateLimitError",
        502: "NetworkError",
        503: "UnavailableError",
        504: "TimeoutError",
    }.get(status, "InternalError")


__all__ = [
    "ApiError",
    "AuthenticationError",
    "AuthorizationError",
    "ConflictError",
    "InternalError",
    "NetworkError",
    "NotFoundError",
    "QuotaError",
    "RateLimitError",
    "RequestTimeoutError",
    "SerializationError",
    "StorageError",
    "UnavailableError",
    "ValidationError",
    "error_from_response",
]
