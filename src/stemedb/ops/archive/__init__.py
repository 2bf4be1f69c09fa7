"""WAL archival: sealed segments to a directory or S3, and reading them back
(docs/design/wal-archive.md)."""
