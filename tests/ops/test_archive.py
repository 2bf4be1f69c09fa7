"""WAL archival to a local directory base: what is shipped, idempotent retries,
write-once refusal, gap detection and the local deletion rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from archive_helpers import fill, open_engine, wal_files

from stemedb.config import load_config
from stemedb.errors import StorageError, WalCorruptionError
from stemedb.ops.archive.archiving import (
    archive_wal,
    delete_archived_segments,
    durable_applied_lsn,
    local_segments,
)
from stemedb.ops.archive.layout import check_archive, decode_sidecar, read_index
from stemedb.ops.archive.target import CONFLICT_CODE, LocalArchiveTarget
from stemedb.ops.state import compare_store_with_wal


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "archive"


def _sealed(data_dir: Path) -> list[str]:
    return [s.path.name for s in local_segments(data_dir / "wal") if s.sealed]


def test_only_sealed_segments_are_shipped_with_a_sidecar_each(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        sealed = _sealed(data_dir)
        assert len(sealed) >= 3
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        last_lsn = engine.wal.last_lsn
    assert list(run.shipped) == sealed
    assert run.lag_segments == 0 and run.check.ok
    active = wal_files(data_dir)[-1]
    assert not (base / "wal" / active).exists()  # the active segment is never shipped
    for name in sealed:
        data = (base / "wal" / name).read_bytes()
        assert data == (data_dir / "wal" / name).read_bytes()
        sidecar = json.loads((base / "wal" / f"{name}.json").read_text())
        assert set(sidecar) == {"first_lsn", "last_lsn", "size_bytes", "sha256", "archived_at"}
        assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
        assert sidecar["size_bytes"] == len(data)
        assert f"{sidecar['first_lsn']:016x}.wal" == name
    assert run.archived_through_lsn < last_lsn
    assert (
        run.archived_through_lsn
        == decode_sidecar((base / "wal" / f"{sealed[-1]}.json").read_bytes()).last_lsn
    )


def test_a_second_run_ships_nothing_and_a_run_cut_before_the_sidecar_completes(
    tmp_path: Path, base: Path
) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 150)
        first = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        again = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        assert again.shipped == () and again.already_archived == len(first.shipped)
        # A crash between the segment upload and its sidecar: the retry finds the same
        # bytes under the key (no conflict) and writes the missing sidecar.
        cut = base / "wal" / f"{first.shipped[-1]}.json"
        cut.unlink()
        partial = check_archive(LocalArchiveTarget(base))
        assert [g.reason for g in partial.gaps] == ["sidecar_missing"]
        retry = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    assert retry.shipped == (first.shipped[-1],)
    assert retry.check.ok and cut.exists()


def test_a_different_object_under_an_archived_key_is_refused_not_overwritten(
    tmp_path: Path, base: Path
) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        name = _sealed(data_dir)[0]
        squatter = base / "wal" / name
        squatter.parent.mkdir(parents=True)
        squatter.write_bytes(b"another database's segment")
        with pytest.raises(StorageError) as caught:
            archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    assert caught.value.code == CONFLICT_CODE
    assert squatter.read_bytes() == b"another database's segment"
    assert not (base / "wal" / f"{name}.json").exists()


def test_a_sidecar_describing_other_bytes_is_a_conflict(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        sidecar_path = base / "wal" / f"{run.shipped[0]}.json"
        sidecar = json.loads(sidecar_path.read_text())
        sidecar["sha256"] = "0" * 64
        sidecar_path.write_text(json.dumps(sidecar))
        with pytest.raises(StorageError) as caught:
            archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    assert caught.value.code == CONFLICT_CODE


def test_a_missing_archived_segment_is_a_gap(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    target = LocalArchiveTarget(base)
    index = read_index(target)
    second = sorted(index.sidecars)[1]
    middle = index.sidecars[second]
    (base / "wal" / run.shipped[1]).unlink()
    (base / "wal" / f"{run.shipped[1]}.json").unlink()
    check = check_archive(target)
    assert not check.ok
    assert [(g.from_lsn, g.to_lsn, g.reason) for g in check.gaps] == [
        (middle.first_lsn, middle.last_lsn, "missing_range")
    ]
    assert check.contiguous_through_lsn == middle.first_lsn - 1


def test_a_truncated_archived_segment_is_a_gap(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    victim = base / "wal" / run.shipped[0]
    victim.write_bytes(victim.read_bytes()[:-7])
    check = check_archive(LocalArchiveTarget(base))
    assert [g.reason for g in check.gaps] == ["segment_truncated"]
    assert check.gaps[0].from_lsn == 1
    assert check.contiguous_through_lsn == 0


def test_a_flipped_byte_in_an_archived_segment_fails_the_deep_check(
    tmp_path: Path, base: Path
) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    victim = base / "wal" / run.shipped[0]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    assert check_archive(LocalArchiveTarget(base)).ok  # sizes alone cannot see it
    deep = check_archive(LocalArchiveTarget(base), deep=True)
    assert [g.reason for g in deep.gaps] == ["checksum_mismatch"]


def test_a_corrupt_sealed_segment_is_never_archived(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        name = _sealed(data_dir)[1]
    path = data_dir / "wal" / name
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WalCorruptionError):
        archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    assert not (base / "wal" / name).exists()


def test_archived_segments_below_the_checkpoint_are_deleted_locally(
    tmp_path: Path, base: Path
) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        before = wal_files(data_dir)
        sealed = _sealed(data_dir)
        run = archive_wal(
            data_dir / "wal",
            LocalArchiveTarget(base),
            delete=delete_archived_segments(engine.wal, data_dir),
        )
        assert list(run.deleted) == sealed
        assert wal_files(data_dir) == [before[-1]]  # only the active segment is left
        assert run.check.ok  # the local WAL starts where the archive ends: no gap
        fill(engine, 200, 10)  # the engine keeps writing after the deletion
    with open_engine(data_dir) as engine:  # and reopens from the shortened WAL
        assert engine.applied_lsn == engine.wal.last_lsn == 210
    # `stemedb verify` compares the history the local WAL still holds.
    config_file = tmp_path / "api.toml"
    config_file.write_text(f"[storage]\ndata_dir = '{data_dir}'\n")
    report = compare_store_with_wal(load_config(config_file, environ={}))
    assert report["ok"] and report["wal_first_lsn"] > 1, report


def test_unarchived_segments_are_never_deleted(tmp_path: Path, base: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        target = LocalArchiveTarget(base)
        first = archive_wal(data_dir / "wal", target)
        (base / "wal" / f"{first.shipped[1]}.json").unlink()  # "not archived" again
        index = read_index(target)
        deleter = delete_archived_segments(engine.wal, data_dir)
        removed = deleter(local_segments(data_dir / "wal"), index)
    # Only the segment before the unarchived one may go: deletion stops at the first
    # segment that is not archived, so the local WAL stays contiguous.
    assert [p.name for p in removed] == [first.shipped[0]]


def test_segments_above_the_checkpoint_are_kept_even_when_archived(
    tmp_path: Path, base: Path
) -> None:
    from stemedb.ops.archive.archiving import deletion_bound

    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        target = LocalArchiveTarget(base)
        archive_wal(data_dir / "wal", target)
        segments = local_segments(data_dir / "wal")
        index = read_index(target)
        checkpoint = durable_applied_lsn(data_dir)
        assert checkpoint == engine.applied_lsn == 200
        assert deletion_bound(segments, index, checkpoint) == segments[-1].first_lsn
        # A checkpoint inside the second segment: only the first one may go.
        inside = segments[1].first_lsn + 1
        assert deletion_bound(segments, index, inside) == segments[1].first_lsn
        assert deletion_bound(segments, index, 0) is None


def test_a_damaged_archived_segment_is_refused_not_replaced(tmp_path: Path, base: Path) -> None:
    from stemedb.ops.archive.archiving import DAMAGED_CODE

    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        victim = base / "wal" / run.shipped[0]
        victim.write_bytes(victim.read_bytes()[:-1])
        with pytest.raises(StorageError) as caught:
            archive_wal(data_dir / "wal", LocalArchiveTarget(base))
        assert caught.value.code == DAMAGED_CODE
        # The documented way out: delete the damaged object; the next run re-uploads it.
        victim.unlink()
        again = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    assert again.shipped == (run.shipped[0],) and again.check.ok
