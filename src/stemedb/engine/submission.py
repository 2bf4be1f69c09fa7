"""What goes into the writer and what comes back."""

from __future__ import annotations

import msgspec

from stemedb.model.kinds import AnyRecord, RecordKind
from stemedb.wire import WriteResult


class Prepared(msgspec.Struct, frozen=True):
    """A record that passed validation and signature checks, ready for the writer."""

    kind: RecordKind
    record_id: str
    record: AnyRecord


__all__ = ["Prepared", "WriteResult"]
