"""The one reader of record frames (docs/design/wal-format.md §4), used by recovery,
``wal verify``, ``Wal.iter_from`` and ``ops/`` (backup, restore, archival).

``FrameReader`` walks consecutive frames from an offset and yields each whole frame
whose CRC and LSN are right; it stops at the end of the data or at the first frame
that is not, and says why in ``stop`` (a ``FrameStop``). What a stop means is the
caller's to decide: the end of a read chunk, a torn tail, or corruption.
``find_frame`` is the resynchronising search that tells a torn tail from damage with
valid records after it.

This loop is on the replay path: the reader keeps its state in locals and writes
``offset``, ``next_lsn`` and ``stop`` only when it stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import crc32c
import msgspec

from stemedb.wal.format import (
    FRAME_CRC_START,
    FRAME_HEADER,
    FRAME_HEADER_SIZE_BYTES,
    MAX_PAYLOAD_BYTES,
)

StopProblem = Literal["incomplete_header", "past_end", "crc_mismatch", "lsn_mismatch"]


class Frame(msgspec.Struct, frozen=True, gc=False):
    """A whole, valid frame: its LSN and record type, and where it lies in the data."""

    lsn: int
    record_type: int
    start: int  # offset of the frame header
    end: int  # offset just past the payload

    @property
    def payload_start(self) -> int:
        return self.start + FRAME_HEADER_SIZE_BYTES


class FrameStop(msgspec.Struct, frozen=True):
    """Why the reader stopped before the end of the data, at ``offset``.

    - ``incomplete_header``: fewer than 17 bytes are left (``bytes_left``);
    - ``past_end``: the frame claims ``payload_length`` bytes that the data does not
      hold (or more than ``MAX_PAYLOAD_BYTES``);
    - ``crc_mismatch``: the frame's CRC-32C does not match its bytes;
    - ``lsn_mismatch``: a frame with a good CRC has ``lsn``, not ``expected_lsn``.
    """

    offset: int
    problem: StopProblem
    expected_lsn: int
    bytes_left: int = 0
    payload_length: int = 0
    lsn: int = 0

    @property
    def could_be_torn(self) -> bool:
        """A torn write leaves a short or checksum-failing frame; it cannot produce a
        frame with a good CRC and a wrong LSN."""
        return self.problem != "lsn_mismatch"


class FrameReader:
    """Consecutive frames of ``data`` from ``offset``, the first one numbered
    ``first_lsn``. Iterate once; afterwards ``offset`` is the end of the last frame
    yielded, ``next_lsn`` the LSN expected next, and ``stop`` why reading ended before
    the end of the data (``None``: every byte was a whole, valid frame).

    ``verify_crc_from_lsn``: frames with a lower LSN are not CRC-checked (a reader
    skipping records that recovery already verified); their LSN still is.
    """

    __slots__ = ("_data", "next_lsn", "offset", "stop", "verify_crc_from_lsn")

    def __init__(
        self,
        data: bytes | memoryview,
        offset: int,
        first_lsn: int,
        *,
        verify_crc_from_lsn: int = 0,
    ) -> None:
        self._data = data
        self.offset = offset
        self.next_lsn = first_lsn
        self.verify_crc_from_lsn = verify_crc_from_lsn
        self.stop: FrameStop | None = None

    def __iter__(self) -> Iterator[Frame]:
        view = memoryview(self._data)
        unpack = FRAME_HEADER.unpack_from
        crc = crc32c.crc32c
        size = len(view)
        pos = self.offset
        expected = self.next_lsn
        check_from = self.verify_crc_from_lsn
        try:
            while pos < size:
                if size - pos < FRAME_HEADER_SIZE_BYTES:
                    self.stop = FrameStop(pos, "incomplete_header", expected, bytes_left=size - pos)
                    return
                length, checksum, record_type, lsn = unpack(view, pos)
                end = pos + FRAME_HEADER_SIZE_BYTES + length
                if length > MAX_PAYLOAD_BYTES or end > size:
                    self.stop = FrameStop(pos, "past_end", expected, payload_length=length)
                    return
                if lsn >= check_from and crc(view[pos + FRAME_CRC_START : end]) != checksum:
                    self.stop = FrameStop(pos, "crc_mismatch", expected)
                    return
                if lsn != expected:
                    self.stop = FrameStop(pos, "lsn_mismatch", expected, lsn=lsn)
                    return
                yield Frame(lsn, record_type, pos, end)
                expected += 1
                pos = end
        finally:
            self.offset = pos
            self.next_lsn = expected
            view.release()


def find_frame(data: bytes, start: int, min_lsn: int) -> int | None:
    """The first offset >= ``start`` holding a whole frame with a good CRC and an LSN
    >= ``min_lsn`` (``None`` if there is none): then damage before it is not a torn
    tail. Slow (byte by byte), but it runs only on a damaged segment, and stops at
    the first valid frame."""
    size = len(data)
    if start >= size or data.count(0, start) == size - start:
        return None
    max_lsn = min_lsn + (size - start) // FRAME_HEADER_SIZE_BYTES + 1
    unpack = FRAME_HEADER.unpack_from
    for offset in range(start, size - FRAME_HEADER_SIZE_BYTES + 1):
        lsn = unpack(data, offset)[3]
        if min_lsn <= lsn <= max_lsn and any(True for _ in FrameReader(data, offset, lsn)):
            return offset
    return None
