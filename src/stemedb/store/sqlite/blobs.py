"""How the SQLite store keeps ids, agent lists and records: 32-byte BLOBs for ids and
agent keys (hex above the store), msgpack for records."""

from __future__ import annotations

from typing import Final

import msgspec

from stemedb.model.records import Assertion, Epoch, Source, Supersession

AGENT_BYTES: Final = 32

RECORD_ENCODER: Final = msgspec.msgpack.Encoder()
JSON_ENCODER: Final = msgspec.json.Encoder()  # id lists bound to ``json_each(?)``
ASSERTION_DECODER: Final = msgspec.msgpack.Decoder(Assertion)
EPOCH_DECODER: Final = msgspec.msgpack.Decoder(Epoch)
SUPERSESSION_DECODER: Final = msgspec.msgpack.Decoder(Supersession)
SOURCE_DECODER: Final = msgspec.msgpack.Decoder(Source)


def hex_or_none(blob: bytes | None) -> str | None:
    return None if blob is None else blob.hex()


def agents_of(blob: bytes) -> tuple[str, ...]:
    """The agent ids in a ``signers`` BLOB (32-byte keys, concatenated)."""
    return tuple(blob[i : i + AGENT_BYTES].hex() for i in range(0, len(blob), AGENT_BYTES))
