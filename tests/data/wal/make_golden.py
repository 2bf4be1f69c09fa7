"""Write the golden WAL segment ``golden/0000000000000001.wal`` (run once; committed).

    uv run python tests/data/wal/make_golden.py

The payloads are fixed; ``tests/unit/wal/test_wal_format.py`` decodes the file byte for
byte. Regenerate only together with a format change in ``docs/design/wal-format.md``.
"""

from __future__ import annotations

from pathlib import Path

from stemedb.wal.format import encode_batch, encode_segment_header, segment_name

GOLDEN_RECORDS: list[tuple[int, bytes]] = [
    (1, b""),
    (2, b"hello, wal"),
    (7, b"\x82\xa7subject\xb1drugs/semaglutide\xaaconfidence\xcb?\xe9\x99\x99\x99\x99\x99\x9a"),
    (255, bytes(range(256))),
]


def main() -> None:
    target = Path(__file__).parent / "golden" / segment_name(1)
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(encode_segment_header(1) + encode_batch(1, GOLDEN_RECORDS))
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
