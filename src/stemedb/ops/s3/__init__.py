"""The one S3 seam of StemeDB: backups (``ops.backup``) and WAL archival (``ops.archive``).

``location`` (URLs and keys), ``errors`` (translation), ``client`` (``S3Client``); the
names below are imported from ``stemedb.ops.s3`` itself.

A small API over boto3 that works with AWS and with S3-compatible servers (MinIO, Ceph,
OpenStack Swift's s3api, moto):

- ``parse_s3_url("s3://bucket/some/prefix")`` -> ``S3Location(bucket, prefix)``;
  ``location.key("a", "b")`` -> ``"some/prefix/a/b"``, ``location.url(...)`` likewise.
- ``S3Client.from_env()`` builds a client from the environment: endpoint
  ``STEMEDB_S3_ENDPOINT_URL``, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``
  (unset = AWS); region ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, default ``us-east-1``;
  credentials from boto3's usual chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``, profiles, instance roles). Path-style addressing, and request
  checksums only where an operation requires them (non-AWS servers reject the newer
  default CRC trailers).
- ``put_bytes`` / ``put_file`` upload with ``Content-MD5`` (the server checks the body)
  and the SHA-256 as user metadata ``sha256``. Write-once: a key that exists is never
  overwritten. An existing object with the same SHA-256 counts as success
  (``PutResult.created`` is False: retries are idempotent); a different one raises
  ``StorageError(code="s3_object_exists")``. The put carries ``If-None-Match: *`` so
  servers that support it close the race between the existence check and the write.
- ``get_bytes``, ``download_file``, ``head`` (None when missing), ``list_objects`` (every key
  under a prefix), ``list_prefixes`` (one level, like ``ls``), ``delete``.
- botocore errors become ``NetworkError`` (cannot reach the endpoint; retryable) or
  ``StorageError`` with a code: ``s3_object_not_found``, ``s3_no_such_bucket``,
  ``s3_access_denied``, ``s3_no_credentials``, ``s3_object_exists``, ``s3_error``.
"""

from stemedb.ops.s3.client import (
    ObjectInfo,
    PutResult,
    S3Client,
    endpoint_from_env,
    file_sha256,
    region_from_env,
)
from stemedb.ops.s3.errors import translate_s3_error
from stemedb.ops.s3.location import S3_SCHEME, S3Location, is_s3_url, parse_s3_url

__all__ = [
    "S3_SCHEME",
    "ObjectInfo",
    "PutResult",
    "S3Client",
    "S3Location",
    "endpoint_from_env",
    "file_sha256",
    "is_s3_url",
    "parse_s3_url",
    "region_from_env",
    "translate_s3_error",
]
