"""The write-ahead log: StemeDB's durability owner.

On-disk contract (normative text: ``docs/design/wal-format.md``):

- A WAL is one directory of segment files named ``{first_lsn:016x}.wal``. LSNs number
  records consecutively from 1 across segments, with no gaps.
- A segment starts with a 24-byte header: magic ``b"STEMEWAL"``, format version (u16,
  1), flags (u16, 0), first LSN (u64, equal to the name), CRC-32C of those 20 bytes.
- Then record frames, little-endian: payload length (u32), CRC-32C (u32) of everything
  after the CRC field (type, LSN, payload), record type (u8), LSN (u64), payload
  (opaque bytes; the engine stores msgpack).
- ``append`` writes a batch with one write and one ``fdatasync``; it returns only once
  the batch is durable ("acknowledged implies present"). A failed fsync is never
  retried: the WAL turns read-only. A full disk leaves no partial batch behind.
- A new segment starts when the next batch would push the active one past
  ``segment_size_bytes``; the old one is fsynced, the new one and the directory too.
- On open every record is verified. Damage at the tail of the last segment with no
  valid record after it (a torn write) is cut off, its bytes kept in ``*.broken``.
  Any other damage raises ``WalCorruptionError`` naming the segment and byte offset;
  ``repair`` is the explicit way past it.

``append`` runs on one writer thread; readers (``iter_from``) may run concurrently and
see records up to the last durable LSN at the time of the call.
"""

from stemedb.wal.format import FORMAT_VERSION, MAGIC
from stemedb.wal.log import SEGMENT_SIZE_BYTES, SegmentInfo, Wal
from stemedb.wal.observer import NullWalObserver, WalObserver
from stemedb.wal.recovery import RecoveryReport, RepairReport, VerifyReport, repair, verify
from stemedb.wal.segment import Damage, WalRecord

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SEGMENT_SIZE_BYTES",
    "Damage",
    "NullWalObserver",
    "RecoveryReport",
    "RepairReport",
    "SegmentInfo",
    "VerifyReport",
    "Wal",
    "WalObserver",
    "WalRecord",
    "repair",
    "verify",
]
