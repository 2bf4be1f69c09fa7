"""S3 URLs: ``s3://bucket/prefix`` and the keys under it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from stemedb.errors import ValidationError

S3_SCHEME: Final = "s3://"


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing slash; may be empty)."""

    bucket: str
    prefix: str = ""

    def key(self, *parts: str) -> str:
        """The key of ``parts`` under this prefix, joined with ``/``."""
        pieces = [self.prefix, *parts] if self.prefix else list(parts)
        return "/".join(p.strip("/") for p in pieces if p.strip("/"))

    def url(self, *parts: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key(*parts)}".rstrip("/")

    def child(self, *parts: str) -> S3Location:
        return S3Location(self.bucket, self.key(*parts))


def is_s3_url(text: str | os.PathLike[str]) -> bool:
    return isinstance(text, str) and text.startswith(S3_SCHEME)


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix`` -> ``S3Location``; ``ValidationError`` for anything else."""
    if not is_s3_url(url):
        raise ValidationError("url", "must start with s3://", f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValidationError("url", "needs a bucket", f"{url!r} names no bucket")
    return S3Location(bucket, prefix.strip("/"))
