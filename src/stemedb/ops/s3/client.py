"""The S3 client: write-once puts, reads and listings, with StemeDB's errors (the
package doc describes the behaviour)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

from stemedb.errors import StorageError
from stemedb.ops.s3.errors import (
    NOT_FOUND_CODES,
    PRECONDITION_CODES,
    TRANSLATED_ERRORS,
    UNSUPPORTED_CODES,
    error_code,
    translate_s3_error,
)
from stemedb.ops.s3.location import S3Location

DEFAULT_REGION: Final = "us-east-1"
ENDPOINT_ENV_VARS: Final = ("STEMEDB_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_ENV_VARS: Final = ("AWS_REGION", "AWS_DEFAULT_REGION")
SHA256_METADATA_KEY: Final = "sha256"
SINGLE_PUT_MAX_BYTES: Final = 1024 * 1024 * 1024  # above this: multipart upload
HASH_CHUNK_BYTES: Final = 4 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS: Final = 10
READ_TIMEOUT_SECONDS: Final = 120
MAX_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    etag: str
    sha256: str | None  # from the object's metadata (None from a listing)


@dataclass(frozen=True)
class PutResult:
    key: str
    size_bytes: int
    sha256: str
    created: bool  # False: the same bytes were already there (an idempotent retry)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _file_md5_b64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def endpoint_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return next((env[name] for name in ENDPOINT_ENV_VARS if env.get(name)), None)


def region_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return next((env[name] for name in REGION_ENV_VARS if env.get(name)), DEFAULT_REGION)


class S3Client:
    """A bucket-agnostic S3 client with StemeDB's errors and write-once puts."""

    def __init__(self, client: Any, *, endpoint_url: str | None = None) -> None:
        self._client = client
        self.endpoint_url = endpoint_url
        self._if_none_match_supported = True

    @classmethod
    def from_env(
        cls,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> S3Client:
        """A client for ``endpoint_url`` (else from the environment; None = AWS)."""
        endpoint = endpoint_url or endpoint_from_env(environ)
        config = botocore.config.Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )
        session = boto3.session.Session()
        client = session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or region_from_env(environ),
            config=config,
        )
        return cls(client, endpoint_url=endpoint)

    @property
    def raw(self) -> Any:
        """The boto3 client, for operations this module does not wrap."""
        return self._client

    def _call(self, action: str, target: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(**kwargs)
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, action, target) from exc

    # -- reading -------------------------------------------------------------------

    def head(self, location: S3Location, key: str) -> ObjectInfo | None:
        """The object's size, ETag and ``sha256`` metadata, or None if it does not exist."""
        target = f"s3://{location.bucket}/{key}"
        try:
            answer = self._client.head_object(Bucket=location.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                return None
            raise translate_s3_error(exc, "head", target) from exc
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "head", target) from exc
        metadata = {k.lower(): v for k, v in (answer.get("Metadata") or {}).items()}
        return ObjectInfo(
            key,
            int(answer.get("ContentLength", 0)),
            str(answer.get("ETag", "")).strip('"'),
            metadata.get(SHA256_METADATA_KEY),
        )

    def get_bytes(self, location: S3Location, key: str) -> bytes:
        target = f"s3://{location.bucket}/{key}"
        answer = self._call("get", target, "get_object", Bucket=location.bucket, Key=key)
        try:
            body: bytes = answer["Body"].read()
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "get", target) from exc
        return body

    def download_file(self, location: S3Location, key: str, path: Path) -> int:
        """Download to ``path`` (multipart for big objects); return its size."""
        target = f"s3://{location.bucket}/{key}"
        self._call(
            "download", target, "download_file", Bucket=location.bucket, Key=key, Filename=str(path)
        )
        return path.stat().st_size

    def list_objects(self, location: S3Location, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a full key prefix), in key order."""
        target = f"s3://{location.bucket}/{prefix}"
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        str(item["Key"]),
                        int(item.get("Size", 0)),
                        str(item.get("ETag", "")).strip('"'),
                        None,
                    )
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "list", target) from exc

    def list_prefixes(self, location: S3Location, prefix: str = "") -> list[str]:
        """The "directories" directly under ``prefix`` (each ends with ``/``)."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        target = f"s3://{location.bucket}/{prefix}"
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        try:
            for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix, Delimiter="/"):
                found.extend(str(p["Prefix"]) for p in page.get("CommonPrefixes", []))
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "list", target) from exc
        return found

    # -- writing -------------------------------------------------------------------

    def put_bytes(
        self,
        location: S3Location,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
    ) -> PutResult:
        """Write-once upload of ``data`` (see the module doc)."""
        sha256 = hashlib.sha256(data).hexdigest()
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
        return self._put_once(
            location,
            key,
            sha256,
            len(data),
            lambda extra: self._client.put_object(
                Bucket=location.bucket,
                Key=key,
                Body=data,
                ContentMD5=md5,
                ContentType=content_type,
                Metadata={SHA256_METADATA_KEY: sha256},
                **extra,
            ),
        )

    def put_file(
        self, location: S3Location, key: str, path: Path, *, sha256: str | None = None
    ) -> PutResult:
        """Write-once upload of a file; multipart above ``SINGLE_PUT_MAX_BYTES``."""
        digest = sha256 or file_sha256(path)
        size = path.stat().st_size
        if size > SINGLE_PUT_MAX_BYTES:

            def upload(_extra: dict[str, str]) -> Any:
                return self._client.upload_file(
                    str(path),
                    location.bucket,
                    key,
                    ExtraArgs={"Metadata": {SHA256_METADATA_KEY: digest}},
                    Config=TransferConfig(multipart_threshold=SINGLE_PUT_MAX_BYTES),
                )

            return self._put_once(location, key, digest, size, upload, conditional=False)
        md5 = _file_md5_b64(path)

        def put(extra: dict[str, str]) -> Any:
            with path.open("rb") as body:
                return self._client.put_object(
                    Bucket=location.bucket,
                    Key=key,
                    Body=body,
                    ContentMD5=md5,
                    Metadata={SHA256_METADATA_KEY: digest},
                    **extra,
                )

        return self._put_once(location, key, digest, size, put)

    def _put_once(
        self,
        location: S3Location,
        key: str,
        sha256: str,
        size: int,
        put: Any,
        *,
        conditional: bool = True,
    ) -> PutResult:
        target = f"s3://{location.bucket}/{key}"
        existing = self.head(location, key)
        if existing is not None:
            return self._same_or_conflict(existing, target, sha256, size)
        extra = {"IfNoneMatch": "*"} if conditional and self._if_none_match_supported else {}
        try:
            put(extra)
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            if code in PRECONDITION_CODES:  # someone wrote it between head and put
                again = self.head(location, key)
                if again is not None:
                    return self._same_or_conflict(again, target, sha256, size)
            if code in UNSUPPORTED_CODES and extra:
                self._if_none_match_supported = False  # fall back to head-then-put
                return self._put_once(location, key, sha256, size, put, conditional=conditional)
            raise translate_s3_error(exc, "put", target) from exc
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "put", target) from exc
        return PutResult(key, size, sha256, True)

    @staticmethod
    def _same_or_conflict(existing: ObjectInfo, target: str, sha256: str, size: int) -> PutResult:
        if existing.sha256 == sha256 and existing.size_bytes == size:
            return PutResult(existing.key, size, sha256, False)
        raise StorageError(
            f"S3 put {target}: a different object already exists there (write-once keys:"
            f" existing sha256={existing.sha256}, size={existing.size_bytes}; new sha256={sha256})",
            code="s3_object_exists",
            retryable=False,
            details={"target": target, "existing_sha256": existing.sha256, "sha256": sha256},
        )

    def delete(self, location: S3Location, keys: list[str]) -> None:
        """Delete ``keys`` one request each; missing keys are not an error.

        Not ``DeleteObjects``: OpenStack Swift's S3 API requires a Content-MD5 header on
        it that boto3 no longer sends, and retention deletes only a few objects."""
        for key in keys:
            self._call(
                "delete",
                f"s3://{location.bucket}/{key}",
                "delete_object",
                Bucket=location.bucket,
                Key=key,
            )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (for tests and first-time setup); an existing one is fine."""
        try:
            self._client.create_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                return
            raise translate_s3_error(exc, "create bucket", bucket) from exc
        except TRANSLATED_ERRORS as exc:
            raise translate_s3_error(exc, "create bucket", bucket) from exc
