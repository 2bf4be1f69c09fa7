"""WAL payloads of the engine: msgpack ``[record_id, committed_at, record]``.

The record type byte of the WAL frame is the ``RecordKind``; the payload carries the
content ID (so replay needs no re-hashing) and the commit time (so ``as_of`` reads give
the same answer after a rebuild). Part of the on-disk format: see docs/design/wal-format.md.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stemedb.errors import WalCorruptionError
from stemedb.model.kinds import TYPE_OF_KIND, AnyRecord, Entry, RecordKind

_ENCODER = msgspec.msgpack.Encoder()
_DECODERS: dict[RecordKind, msgspec.msgpack.Decoder[Any]] = {
    kind: msgspec.msgpack.Decoder(tuple[str, float, cls])  # type: ignore[valid-type]
    for kind, cls in TYPE_OF_KIND.items()
}
# Keyed by the plain int type byte: a dict lookup instead of RecordKind(...) per record.
_KIND_AND_DECODER: dict[int, tuple[RecordKind, msgspec.msgpack.Decoder[Any]]] = {
    int(kind): (kind, decoder) for kind, decoder in _DECODERS.items()
}


def encode_payload(record_id: str, committed_at: float, record: AnyRecord) -> bytes:
    return _ENCODER.encode((record_id, committed_at, record))


def decode_entry(lsn: int, record_type: int, payload: bytes) -> Entry:
    """The store entry of one WAL record; a payload that does not decode is corruption."""
    try:
        kind, decoder = _KIND_AND_DECODER[record_type]
        record_id, committed_at, record = decoder.decode(payload)
    except (KeyError, ValueError, msgspec.DecodeError) as exc:
        raise WalCorruptionError(
            f"WAL record at LSN {lsn} (type {record_type}) does not decode: {exc}",
            details={"lsn": lsn, "type": record_type},
        ) from exc
    return Entry(lsn, kind, record_id, record, committed_at)
