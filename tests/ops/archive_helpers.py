"""Helpers of the WAL archive and DR drill tests: an engine with small segments, so a
few hundred records make several sealed segments, and signed records to fill it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from stemedb.engine import Engine, EngineSettings
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

SEGMENT_SIZE_BYTES: Final = 16 * 1024  # ~40 records per segment
_KEY: Final = AgentKey.from_seed(b"\x07" * 32)


def claim(index: int) -> Assertion:
    return sign_assertion(
        _KEY,
        subject=f"archive/subject-{index % 31}",
        predicate=f"p{index % 3}",
        object=f"value-{index}",
        confidence=0.5,
        timestamp=int(time.time()) - 5,
    )


def open_engine(data_dir: Path) -> Engine:
    return Engine.embedded(
        data_dir,
        EngineSettings(
            segment_size_bytes=SEGMENT_SIZE_BYTES, group_commit_max_delay_us=0, fsync=False
        ),
    )


def fill(engine: Engine, start: int, count: int, batch: int = 10) -> None:
    """Write records ``start..start+count-1`` in batches of ``batch`` (one group commit
    each, so segments rotate between batches)."""
    for first in range(start, start + count, batch):
        results = engine.write_many(
            [claim(i) for i in range(first, min(first + batch, start + count))]
        )
        assert all(not isinstance(r, Exception) for r in results), results


def wal_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "wal").glob("*.wal"))
