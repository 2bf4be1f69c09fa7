"""botocore and boto3 errors as StemeDB's: ``NetworkError`` (cannot reach the endpoint;
retryable) or ``StorageError`` with an ``s3_*`` code (the package doc lists them)."""

from __future__ import annotations

from typing import Final

import boto3  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from stemedb.errors import NetworkError, StorageError

NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
DENIED_CODES: Final = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
)
PRECONDITION_CODES: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
UNSUPPORTED_CODES: Final = frozenset({"NotImplemented", "501"})


def translate_s3_error(exc: Exception, action: str, target: str) -> NetworkError | StorageError:
    """The StemeDB error for a botocore/boto3 error raised while doing ``action``."""
    where = f"{action} {target}"
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        return NetworkError(f"S3 {where}: cannot reach the endpoint: {exc}")
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return StorageError(
            f"S3 {where}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            code="s3_no_credentials",
            retryable=False,
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(error.get("Message", "")) or code
        details = {"action": action, "target": target, "s3_code": code, "http_status": status}
        if code in NOT_FOUND_CODES:
            return StorageError(
                f"S3 {where}: not found",
                code="s3_object_not_found",
                retryable=False,
                details=details,
            )
        if code == "NoSuchBucket":
            return StorageError(
                f"S3 {where}: the bucket does not exist",
                code="s3_no_such_bucket",
                retryable=False,
                details=details,
            )
        if code in DENIED_CODES:
            return StorageError(
                f"S3 {where}: access denied ({code}: {message})",
                code="s3_access_denied",
                retryable=False,
                details=details,
            )
        retryable = status >= 500 or code in {"SlowDown", "RequestTimeout", "Throttling"}
        return StorageError(
            f"S3 {where}: {code}: {message}", code="s3_error", retryable=retryable, details=details
        )
    return StorageError(f"S3 {where}: {exc}", code="s3_error")


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


TRANSLATED_ERRORS: Final = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    boto3.exceptions.Boto3Error,
)
