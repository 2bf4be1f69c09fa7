"""The one error hierarchy of StemeDB.

Every error carries a stable snake_case ``code``, the HTTP ``status`` the API answers
with, the envelope ``type`` (one of API.md's error types) and whether the client may
retry. Layers translate third-party errors (OSError, SQLite, drivers) into these at
their seam: ``raise StorageError(...) from exc``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class StemeError(Exception):
    """Root of every error StemeDB raises on purpose."""

    type_name: ClassVar[str] = "InternalError"
    default_code: ClassVar[str] = "internal_error"
    default_status: ClassVar[int] = 500
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status or self.default_status
        self.details: dict[str, Any] = details or {}
        self.retryable = self.default_retryable if retryable is None else retryable

    def to_envelope(self, request_id: str) -> dict[str, Any]:
        """The API.md error envelope for this error."""
        return {
            "error": {
                "code": self.code,
                "type": self.type_name,
                "message": self.message,
                "details": self.details,
                "retryable": self.retryable,
            },
            "request_id": request_id,
        }


class ValidationError(StemeError):
    """Input breaks a rule. ``field`` and ``rule`` name exactly which."""

    type_name = "ValidationError"
    default_code = "invalid_field"
    default_status = 400

    def __init__(
        self,
        field: str,
        rule: str,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(
            message or f"{field}: {rule}",
            code=code,
            status=status,
            details={"field": field, "rule": rule},
        )
        self.field = field
        self.rule = rule


class SemanticError(ValidationError):
    """Well-formed but semantically invalid (422): e.g. it refers to an unknown record."""

    default_code = "semantically_invalid"
    default_status = 422


class SerializationError(StemeError):
    type_name = "SerializationError"
    default_code = "malformed_body"
    default_status = 400


class AuthenticationError(StemeError):
    type_name = "AuthenticationError"
    default_code = "unauthenticated"
    default_status = 401


class SignatureError(AuthenticationError):
    """A signature does not verify against the content and agent key."""

    default_code = "bad_signature"


class AuthorizationError(StemeError):
    type_name = "AuthorizationError"
    default_code = "forbidden"
    default_status = 403


class NotFoundError(StemeError):
    type_name = "NotFoundError"
    default_code = "not_found"
    default_status = 404


class ConflictError(StemeError):
    type_name = "ConflictError"
    default_code = "conflict"
    default_status = 409


class RateLimitError(StemeError):
    type_name = "RateLimitError"
    default_code = "rate_limited"
    default_status = 429
    default_retryable = True


class QuotaError(StemeError):
    type_name = "QuotaError"
    default_code = "quota_exceeded"
    default_status = 429
    default_retryable = True


class RequestTimeoutError(StemeError):
    type_name = "TimeoutError"
    default_code = "request_timeout"
    default_status = 504
    default_retryable = True


class StorageError(StemeError):
    type_name = "StorageError"
    default_code = "storage_error"
    default_status = 503
    default_retryable = True


class DiskFullError(StorageError):
    default_code = "disk_full"


class ReadOnlyError(StorageError):
    """The node refuses writes (a failed fsync made it read-only; restart required)."""

    default_code = "read_only"


class WalCorruptionError(StorageError):
    """The WAL holds a bad record that is not a torn tail. Names segment and offset."""

    default_code = "wal_corrupt"
    default_status = 500
    default_retryable = False


class NetworkError(StemeError):
    type_name = "NetworkError"
    default_code = "network_error"
    default_status = 502
    default_retryable = True


class UnavailableError(StemeError):
    type_name = "UnavailableError"
    default_code = "unavailable"
    default_status = 503
    default_retryable = True


class InternalError(StemeError):
    type_name = "InternalError"
    default_code = "internal_error"
    default_status = 500


def error_type_of(exc: BaseException) -> str:
    """The envelope type for ``exc`` (``InternalError`` for anything not ours), for the
    ``Error: <Type>: …`` log lines of API.md."""
    return exc.type_name if isinstance(exc, StemeError) else "InternalError"


ERROR_TYPES: tuple[str, ...] = (
    "ValidationError",
    "AuthenticationError",
    "AuthorizationError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "QuotaError",
    "TimeoutError",
    "StorageError",
    "SerializationError",
    "NetworkError",
    "UnavailableError",
    "InternalError",
)
