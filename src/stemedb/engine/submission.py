"""What goes into the writer and what comes back."""

from __future__ import annotations

from typing import Literal

import msgspec

from stemedb.model.kinds import AnyRecord, RecordKind


class Prepared(msgspec.Struct, frozen=True):
    """A record that passed validation and signature checks, ready for the writer."""

    kind: RecordKind
    record_id: str
    record: AnyRecord


class WriteResult(msgspec.Struct, frozen=True):
    id: str
    lsn: int
    status: Literal["created", "exists"]
