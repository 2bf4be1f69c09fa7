"""The shared S3 helper (``stemedb.ops.s3``) against a real moto server."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import NetworkError, StorageError, ValidationError
from stemedb.ops.s3 import S3Client, S3Location, is_s3_url, parse_s3_url


def test_s3_url_is_parsed_into_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://bkt/a/b/") == S3Location("bkt", "a/b")
    assert parse_s3_url("s3://bkt") == S3Location("bkt", "")
    assert S3Location("bkt", "a").key("x", "y.json") == "a/x/y.json"
    assert S3Location("bkt", "").key("x") == "x"
    assert S3Location("bkt", "a").url("x") == "s3://bkt/a/x"
    assert is_s3_url("s3://bkt") and not is_s3_url("/tmp/x")


@pytest.mark.parametrize("url", ["/tmp/x", "s3://", "http://bkt/a"])
def test_non_s3_url_is_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_s3_url(url)


def test_put_is_write_once_and_idempotent(s3_bucket: S3Location) -> None:
    client = S3Client.from_env()
    key = s3_bucket.key("wal", "0000000000000001.wal")
    first = client.put_bytes(s3_bucket, key, b"segment bytes")
    assert first.created
    again = client.put_bytes(s3_bucket, key, b"segment bytes")
    assert not again.created and again.sha256 == first.sha256
    with pytest.raises(StorageError) as caught:
        client.put_bytes(s3_bucket, key, b"other bytes")
    assert caught.value.code == "s3_object_exists"
    assert client.get_bytes(s3_bucket, key) == b"segment bytes"
    info = client.head(s3_bucket, key)
    assert info is not None and info.sha256 == first.sha256 and info.size_bytes == 13


def test_put_file_get_list_and_delete(s3_bucket: S3Location, tmp_path: Path) -> None:
    client = S3Client.from_env()
    source = tmp_path / "blob"
    source.write_bytes(b"x" * 100_000)
    client.put_file(s3_bucket, s3_bucket.key("d1", "blob"), source)
    client.put_bytes(s3_bucket, s3_bucket.key("d2", "meta.json"), b"{}")
    keys = [o.key for o in client.list_objects(s3_bucket, s3_bucket.key("") + "/")]
    assert keys == ["backups/d1/blob", "backups/d2/meta.json"]
    assert client.list_prefixes(s3_bucket, s3_bucket.prefix) == ["backups/d1/", "backups/d2/"]
    target = tmp_path / "copy"
    assert client.download_file(s3_bucket, "backups/d1/blob", target) == 100_000
    client.delete(s3_bucket, ["backups/d1/blob"])
    assert client.head(s3_bucket, "backups/d1/blob") is None


def test_missing_object_and_bucket_are_storage_errors(s3_bucket: S3Location) -> None:
    client = S3Client.from_env()
    with pytest.raises(StorageError) as missing:
        client.get_bytes(s3_bucket, "nope")
    assert missing.value.code == "s3_object_not_found"
    with pytest.raises(StorageError) as no_bucket:
        list(client.list_objects(S3Location("no-such-bucket-here"), ""))
    assert no_bucket.value.code == "s3_no_such_bucket"


def test_unreachable_endpoint_is_a_network_error(s3_env: str) -> None:
    client = S3Client.from_env(endpoint_url="http://127.0.0.1:9")
    with pytest.raises(NetworkError):
        client.head(S3Location("bkt"), "k")
