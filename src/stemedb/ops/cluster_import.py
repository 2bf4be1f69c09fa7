"""``stemedb cluster import``: move an embedded node's history into the PostgreSQL of
cluster mode without loss, and prove it.

1. The embedded node must be stopped: the import holds ``<data_dir>/LOCK`` from start
   to end (a running node holds it; ``data_dir_locked`` otherwise), so the node cannot
   start in the middle either.
2. The WAL must hold the whole history, from LSN 1 (archived segments deleted from the
   WAL directory must be restored first: ``stemedb restore --wal-archive``).
3. The database must hold a prefix of this WAL: nothing (a fresh database after
   ``stemedb db migrate``), or what an earlier run of this import committed. Its last
   LSN must not lie past the WAL's, and its state hash over its LSNs must equal the
   WAL's over the same LSNs (the definition of ``stemedb verify``,
   ``ops.state.StateDigest``); otherwise the import is refused before it writes
   anything (``import_not_a_prefix``).
4. The WAL records after the database's last LSN are applied in batches of
   ``batch_records``, one transaction each, with the WAL's LSNs and commit times
   (``Store.apply``). A killed or failed import leaves the database at a batch
   boundary, a prefix: running it again resumes from there; once complete, another
   run writes nothing.
5. At the end the database's state hash must equal the WAL's (``import_verify_failed``
   otherwise).

The WAL is read once: the state hash of the part already imported is checked when the
reading reaches the database's last LSN, the rest is hashed while it is applied.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from stemedb.engine.codec import decode_entry
from stemedb.errors import StorageError
from stemedb.model.kinds import Entry
from stemedb.ops.progress import NullProgress, Progress
from stemedb.ops.state import StateDigest
from stemedb.store.protocol import Store
from stemedb.sys.lock import DirectoryLock
from stemedb.wal import Wal
from stemedb.wal.format import parse_segment_name

IMPORT_BATCH_RECORDS: Final = 5_000
# A failpoint for the tests of an interrupted import: sleep this long after each batch.
BATCH_DELAY_FAILPOINT: Final = "STEMEDB_FAILPOINT_IMPORT_BATCH_DELAY_SECONDS"


@dataclass
class ImportReport:
    ok: bool
    data_dir: str
    wal_dir: str
    wal_last_lsn: int
    database_lsn_before: int  # > 0: resumed (or nothing left to do)
    records_imported: int
    batches: int
    database_lsn: int
    state_hash: str  # the database's, at the end
    wal_state_hash: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_wal(
    data_dir: Path,
    wal_dir: Path,
    open_target: Callable[[], Store],
    *,
    batch_records: int = IMPORT_BATCH_RECORDS,
    progress: Progress | None = None,
    pause_seconds: float = 0.0,
) -> ImportReport:
    """Import as the module doc says; raises ``StorageError`` on any refusal or failure
    (the database then holds a prefix of the WAL). ``open_target``: opens the store of
    the cluster's database (called once the data directory is locked). ``progress``
    counts records (not bytes)."""
    progress = progress or NullProgress()
    started = time.monotonic()
    _check_wal_dir(wal_dir)
    lock = DirectoryLock(data_dir)  # StorageError(data_dir_locked) while the node runs
    try:
        wal = Wal.open(wal_dir)
        try:
            target = open_target()
            try:
                return _import(
                    data_dir, wal, target, batch_records, progress, pause_seconds, started
                )
            finally:
                target.close()
        finally:
            wal.close()
    finally:
        lock.release()


def _check_wal_dir(wal_dir: Path) -> None:
    """Refuse a directory without segments (``Wal.open`` would create a WAL there)."""
    names = [p.name for p in wal_dir.iterdir()] if wal_dir.is_dir() else []
    if not any(parse_segment_name(name) is not None for name in names):
        raise StorageError(
            f"no WAL segments in {wal_dir}: give the embedded node's data directory"
            " (--data-dir) or configuration (--config)",
            code="wal_unavailable",
            retryable=False,
        )


def _import(
    data_dir: Path,
    wal: Wal,
    target: Store,
    batch_records: int,
    progress: Progress,
    pause_seconds: float,
    started: float,
) -> ImportReport:
    first_lsn = wal.segments()[0].first_lsn
    if first_lsn > 1 and wal.last_lsn > 0:
        raise StorageError(
            f"the WAL in {wal.directory} starts at LSN {first_lsn}: the import needs the"
            " whole history from LSN 1 (restore the archived segments into the WAL"
            " directory first)",
            code="wal_unavailable",
            retryable=False,
        )
    before = target.applied_lsn()
    if before > wal.last_lsn:
        raise _not_a_prefix(f"the database is at LSN {before}, the WAL ends at {wal.last_lsn}")
    database_hash = target.state_hash()
    digest = StateDigest()
    entries = _entries(wal)
    rest: Iterator[Entry] = iter(())
    for entry in entries:  # the part already imported: hashed, then compared
        if entry.lsn > before:
            rest = itertools.chain([entry], entries)
            break
        digest.add(entry)
    if (digest.last_lsn, digest.hexdigest()) != database_hash:
        raise _not_a_prefix(
            f"its state hash over LSNs 1..{database_hash[0]} is {database_hash[1]}, the"
            f" WAL's over 1..{digest.last_lsn} is {digest.hexdigest()}"
        )
    todo = wal.last_lsn - before
    progress.start(f"import LSNs {before + 1}..{wal.last_lsn} into the database", todo)
    batches = 0
    batch: list[Entry] = []
    for entry in rest:
        digest.add(entry)
        batch.append(entry)
        if len(batch) >= batch_records:
            _apply(target, batch, progress, pause_seconds)
            batches += 1
            batch = []
    if batch:
        _apply(target, batch, progress, pause_seconds)
        batches += 1
    database_lsn, state_hash = target.state_hash()
    wal_hash = digest.hexdigest()
    if (database_lsn, state_hash) != (digest.last_lsn, wal_hash):
        raise StorageError(
            f"after the import the database is at LSN {database_lsn} with state hash"
            f" {state_hash}; the WAL ends at LSN {digest.last_lsn} with {wal_hash}:"
            " was something else writing to the database?",
            code="import_verify_failed",
            retryable=False,
        )
    return ImportReport(
        ok=True,
        data_dir=str(data_dir),
        wal_dir=str(wal.directory),
        wal_last_lsn=wal.last_lsn,
        database_lsn_before=before,
        records_imported=todo,
        batches=batches,
        database_lsn=database_lsn,
        state_hash=state_hash,
        wal_state_hash=wal_hash,
        seconds=round(time.monotonic() - started, 3),
    )


def _entries(wal: Wal) -> Iterator[Entry]:
    for rec in wal.iter_from(1):
        yield decode_entry(rec.lsn, rec.type, rec.payload)


def _apply(target: Store, batch: list[Entry], progress: Progress, pause_seconds: float) -> None:
    """One transaction: the batch with its LSNs and commit times, or nothing."""
    target.apply(batch)
    progress.advance(len(batch))
    if pause_seconds:
        time.sleep(pause_seconds)


def _not_a_prefix(why: str) -> StorageError:
    return StorageError(
        f"the database holds records that are not a prefix of this WAL ({why}); import"
        " into an empty database (after `stemedb db migrate`), or into the one an"
        " earlier import of this node filled",
        code="import_not_a_prefix",
        retryable=False,
    )
