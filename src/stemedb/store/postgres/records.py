"""Reads, each a function of a connection: candidates, single records and their trace
data, the change feed and what is counted over it, views. The SQL and the order of
every answer are those of the embedded store (``store/sqlite/``); text keys compare
in byte order (the columns are ``COLLATE "C"``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

from stemedb.model.kinds import RecordKind
from stemedb.model.records import Assertion
from stemedb.store.cache import SubjectPredicate
from stemedb.store.claim_keys import prefix_upper_bound
from stemedb.store.postgres.connection import Conn
from stemedb.store.protocol import ViewRow
from stemedb.store.rows import (
    CandidateRow,
    ChangeRow,
    EpochRow,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
)
from stemedb.store.sqlite.blobs import (
    ASSERTION_DECODER,
    EPOCH_DECODER,
    SOURCE_DECODER,
    SUPERSESSION_DECODER,
    agents_of,
)

CANDIDATE_COLUMNS: Final = ", ".join(f"a.{name}" for name in CandidateRow.__struct_fields__)
SOURCE_COLUMNS: Final = "lsn, id, record, retraction_lsn, retracted_reason"
COUNTED_TABLES: Final = ("assertions", "signatures", "votes", "epochs", "sources")
STATE_HASH_FETCH: Final = 10_000
_RECORD_OF_KIND: Final = {
    RecordKind.ASSERTION: "SELECT record FROM assertions WHERE lsn = %s",
    RecordKind.VOTE: "SELECT record FROM votes WHERE lsn = %s",
    RecordKind.EPOCH: "SELECT record FROM epochs WHERE lsn = %s",
    RecordKind.SUPERSESSION: "SELECT record FROM supersessions WHERE lsn = %s",
    RecordKind.SOURCE: "SELECT record FROM sources WHERE lsn = %s",
}
_RECORD_OF_CHANGE: Final = "SELECT record FROM changes WHERE lsn = %s"


def _hex(blob: bytes | None) -> str | None:
    return None if blob is None else bytes(blob).hex()


def candidate_row(row: Sequence[Any]) -> CandidateRow:
    return CandidateRow(
        lsn=row[0],
        id=bytes(row[1]).hex(),
        subject=row[2],
        predicate=row[3],
        value_key=row[4],
        confidence=row[5],
        timestamp=row[6],
        source_class=row[7],
        source_hash=_hex(row[8]),
        epoch=_hex(row[9]),
        lifecycle=row[10],
        valid_from=row[11],
        valid_to=row[12],
        tainted_by=_hex(row[13]),
        superseded_lsn=row[14],
        signers=agents_of(bytes(row[15])),
        vote_weight=row[16],
        quarantine_lsn=row[17],
        released_lsn=row[18],
    )


def subject_clause(subject: str, prefix: bool) -> tuple[str, list[Any]]:
    """The WHERE clause on ``a.subject``: equal, or the byte range of a prefix."""
    if not prefix:
        return "a.subject = %s", [subject]
    if not subject:
        return "TRUE", []
    upper = prefix_upper_bound(subject)
    if upper is None:
        return "a.subject >= %s", [subject]
    return "a.subject >= %s AND a.subject < %s", [subject, upper]


# -- candidates ------------------------------------------------------------------------


def candidates(
    conn: Conn, subject: str, predicate: str | None, prefix: bool, limit: int
) -> list[CandidateRow]:
    where, args = subject_clause(subject, prefix)
    if predicate is not None:
        where += " AND a.predicate = %s"
        args.append(predicate)
    # The embedded store's index orders: a key's claims (and a predicate's over many
    # subjects) in LSN order, a subject's by predicate, a prefix's by (subject, predicate).
    if predicate is not None:
        order = "a.lsn"
    elif not prefix:
        order = "a.predicate, a.lsn"
    elif subject:
        order = "a.subject, a.predicate, a.lsn"
    else:
        order = "a.lsn"
    sql = f"SELECT {CANDIDATE_COLUMNS} FROM assertions a WHERE {where} ORDER BY {order}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [candidate_row(row) for row in conn.execute(sql, args)]


def candidates_by_ids(conn: Conn, ids: Sequence[str]) -> list[CandidateRow]:
    if not ids:
        return []
    rows = conn.execute(
        f"SELECT {CANDIDATE_COLUMNS} FROM unnest(%s::bytea[]) WITH ORDINALITY AS q(id, n)"
        " JOIN assertions a ON a.id = q.id ORDER BY q.n",
        ([bytes.fromhex(i) for i in ids],),
    )
    return [candidate_row(row) for row in rows]


def subject_predicates(
    conn: Conn,
    subject: str,
    predicate: str | None,
    prefix: bool,
    after: tuple[str, str] | None,
    limit: int,
) -> list[SubjectPredicate]:
    where, args = subject_clause(subject, prefix)
    if predicate is not None:
        where += " AND a.predicate = %s"
        args.append(predicate)
    if after is not None:
        where += " AND (a.subject, a.predicate) > (%s, %s)"
        args.extend(after)
    sql = (
        f"SELECT DISTINCT a.subject, a.predicate FROM assertions a WHERE {where}"
        f" ORDER BY a.subject, a.predicate LIMIT {int(limit)}"
    )
    return [(s, p) for s, p in conn.execute(sql, args)]


def signers_at(
    conn: Conn, assertion_lsns: Sequence[int], lsn_bound: int
) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for target, agent in conn.execute(
        "SELECT assertion_lsn, agent FROM signatures WHERE assertion_lsn = ANY(%s)"
        " AND lsn <= %s ORDER BY assertion_lsn, lsn, agent",
        (list(assertion_lsns), lsn_bound),
    ):
        out.setdefault(target, []).append(bytes(agent).hex())
    return {k: tuple(out[k]) for k in dict.fromkeys(assertion_lsns) if k in out}


def vote_weights_at(conn: Conn, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
    """Each agent's latest vote (by timestamp, then LSN), summed in agent order as the
    embedded store sums them."""
    latest: dict[int, dict[bytes, tuple[int, int, float]]] = {t: {} for t in assertion_lsns}
    for target, agent, timestamp, lsn, weight in conn.execute(
        "SELECT assertion_lsn, agent, timestamp, lsn, weight FROM votes"
        " WHERE assertion_lsn = ANY(%s) AND lsn <= %s"
        " ORDER BY assertion_lsn, agent, timestamp, lsn",
        (list(assertion_lsns), lsn_bound),
    ):
        per_agent = latest[target]
        key = bytes(agent)
        if key not in per_agent or (timestamp, lsn) >= per_agent[key][:2]:
            per_agent[key] = (timestamp, lsn, weight)
    return {t: sum(w for _, _, w in latest[t].values()) for t in assertion_lsns}


def lsn_at(conn: Conn, at: float) -> int:
    """Commit times are non-decreasing in LSN order: the newest change at or before."""
    row = conn.execute(
        "SELECT lsn FROM changes WHERE committed_at <= %s ORDER BY committed_at DESC, lsn DESC"
        " LIMIT 1",
        (at,),
    ).fetchone()
    return 0 if row is None else int(row[0])


def assertions_by_lsn(conn: Conn, lsns: Sequence[int]) -> dict[int, Assertion]:
    if not lsns:
        return {}
    decode = ASSERTION_DECODER.decode
    return {
        int(lsn): decode(blob)
        for lsn, blob in conn.execute(
            "SELECT lsn, record FROM assertions WHERE lsn = ANY(%s)", (list(lsns),)
        )
    }


# -- single records ----------------------------------------------------------------------


def assertion(conn: Conn, record_id: str) -> tuple[int, Assertion, float] | None:
    row = conn.execute(
        "SELECT a.lsn, a.record, c.committed_at FROM assertions a"
        " JOIN changes c ON c.lsn = a.lsn WHERE a.id = %s",
        (bytes.fromhex(record_id),),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), ASSERTION_DECODER.decode(row[1]), float(row[2])


def signatures(conn: Conn, assertion_lsn: int) -> list[SignatureRow]:
    return [
        SignatureRow(bytes(agent).hex(), bytes(sig).hex(), signed_at, lsn)
        for agent, sig, signed_at, lsn in conn.execute(
            "SELECT agent, signature, signed_at, lsn FROM signatures"
            " WHERE assertion_lsn = %s ORDER BY lsn, agent",
            (assertion_lsn,),
        )
    ]


def votes(conn: Conn, assertion_lsn: int) -> list[VoteRow]:
    return [
        VoteRow(bytes(vid).hex(), bytes(agent).hex(), weight, timestamp, lsn)
        for vid, agent, weight, timestamp, lsn in conn.execute(
            "SELECT id, agent, weight, timestamp, lsn FROM votes"
            " WHERE assertion_lsn = %s ORDER BY lsn",
            (assertion_lsn,),
        )
    ]


def supersessions_of(conn: Conn, record_id: str) -> list[SupersessionRow]:
    blob = bytes.fromhex(record_id)
    rows = conn.execute(
        "SELECT lsn, id, record FROM supersessions WHERE old = %s OR new = %s ORDER BY lsn",
        (blob, blob),
    ).fetchall()
    out = []
    for lsn, sid, rec in rows:
        s = SUPERSESSION_DECODER.decode(rec)
        signers = tuple(sig.agent_id for sig in s.signatures)
        out.append(
            SupersessionRow(bytes(sid).hex(), lsn, s.old, s.new, s.reason, s.timestamp, signers)
        )
    return out


def children(conn: Conn, record_id: str) -> list[str]:
    return [
        bytes(row[0]).hex()
        for row in conn.execute(
            "SELECT id FROM assertions WHERE parent = %s ORDER BY lsn",
            (bytes.fromhex(record_id),),
        )
    ]


def citing(conn: Conn, source_hash: str, limit: int) -> list[str]:
    return [
        bytes(row[0]).hex()
        for row in conn.execute(
            "SELECT id FROM assertions WHERE source_hash = %s ORDER BY lsn LIMIT %s",
            (bytes.fromhex(source_hash), limit),
        )
    ]


def source_row(row: Sequence[Any], with_content: bool) -> SourceRow:
    lsn, sid, blob, retraction_lsn, reason = row
    s = SOURCE_DECODER.decode(blob)
    return SourceRow(
        source_hash=s.source_hash,
        id=bytes(sid).hex(),
        lsn=lsn,
        uri=s.uri,
        title=s.title,
        source_class=s.source_class,
        published_at=s.published_at,
        timestamp=s.timestamp,
        registered_by=tuple(sig.agent_id for sig in s.signatures),
        retracted=retraction_lsn is not None,
        retracted_reason=reason,
        retraction_lsn=retraction_lsn,
        content=s.content if with_content else None,
    )


def sources(conn: Conn, after: str | None, limit: int) -> list[SourceRow]:
    args: list[Any] = []
    where = ""
    if after:
        where = "WHERE source_hash > %s"
        args.append(bytes.fromhex(after))
    sql = f"SELECT {SOURCE_COLUMNS} FROM sources {where} ORDER BY source_hash LIMIT {int(limit)}"
    return [source_row(row, False) for row in conn.execute(sql, args)]


def epochs(conn: Conn, epoch_id: str | None = None) -> list[EpochRow]:
    """Epochs in LSN order (or the one of ``epoch_id``)."""
    if epoch_id is None:
        rows = conn.execute("SELECT lsn, id, record FROM epochs ORDER BY lsn").fetchall()
        links = conn.execute("SELECT old, new FROM epoch_supersedes ORDER BY lsn").fetchall()
    else:
        eid = bytes.fromhex(epoch_id)
        rows = conn.execute("SELECT lsn, id, record FROM epochs WHERE id = %s", (eid,)).fetchall()
        links = conn.execute(
            "SELECT old, new FROM epoch_supersedes WHERE old = %s ORDER BY lsn", (eid,)
        ).fetchall()
    superseded_by: dict[str, list[str]] = {}
    for old, new in links:
        superseded_by.setdefault(bytes(old).hex(), []).append(bytes(new).hex())
    out = []
    for lsn, eid_blob, blob in rows:
        e = EPOCH_DECODER.decode(blob)
        hex_id = bytes(eid_blob).hex()
        out.append(
            EpochRow(
                id=hex_id,
                lsn=lsn,
                name=e.name,
                description=e.description,
                kind=e.kind,
                timestamp=e.timestamp,
                supersedes=e.supersedes,
                superseded_by=tuple(superseded_by.get(hex_id, ())),
                signers=tuple(sig.agent_id for sig in e.signatures),
            )
        )
    return out


def trust_row(conn: Conn, agent_id: str) -> TrustRow | None:
    row = conn.execute(
        "SELECT score, updated_at, outcomes FROM trust WHERE agent = %s",
        (bytes.fromhex(agent_id),),
    ).fetchone()
    return None if row is None else TrustRow(agent_id, row[0], row[1], row[2])


def trust_table(conn: Conn) -> dict[str, tuple[float, float]]:
    return {
        bytes(agent).hex(): (score, updated)
        for agent, score, updated in conn.execute("SELECT agent, score, updated_at FROM trust")
    }


def agent_counts(conn: Conn, agent_id: str) -> dict[str, int]:
    agent = bytes.fromhex(agent_id)
    row = conn.execute(
        "SELECT (SELECT count(*) FROM signatures WHERE agent = %s),"
        " (SELECT count(*) FROM signatures WHERE agent = %s AND lsn = assertion_lsn),"
        " (SELECT count(*) FROM votes WHERE agent = %s)",
        (agent, agent, agent),
    ).fetchone()
    assert row is not None
    signed, authored, voted = (int(v) for v in row)
    return {"assertions": authored, "cosignatures": signed - authored, "votes": voted}


def recent_signers(conn: Conn, after: int, limit: int) -> list[tuple[str, int]]:
    rows = conn.execute(
        "SELECT agent, count(*) AS n FROM signatures WHERE assertion_lsn > %s"
        " GROUP BY agent ORDER BY n DESC, agent LIMIT %s",
        (after, limit),
    ).fetchall()
    return [(bytes(agent).hex(), int(n)) for agent, n in rows]


# -- the change feed, stats ----------------------------------------------------------------


def record_blob(conn: Conn, kind: int, lsn: int) -> bytes | None:
    sql = _RECORD_OF_KIND.get(RecordKind(kind), _RECORD_OF_CHANGE)
    row = conn.execute(sql, (lsn,)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def state_hash(conn: Conn, from_lsn: int) -> tuple[int, str]:
    """Streamed through a server-side cursor in one transaction (one snapshot)."""
    digest = hashlib.sha256()
    last = 0
    with conn.transaction(), conn.cursor(name="stemedb_state_hash") as cur:
        cur.itersize = STATE_HASH_FETCH
        cur.execute("SELECT lsn, kind, ref FROM changes WHERE lsn >= %s ORDER BY lsn", (from_lsn,))
        for lsn, kind, ref in cur:
            digest.update(f"{lsn}:{kind}:{bytes(ref).hex()}\n".encode())
            last = lsn
    return last, digest.hexdigest()


def counts(conn: Conn) -> dict[str, int]:
    selects = ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTED_TABLES)
    row = conn.execute(f"SELECT {selects}").fetchone()
    assert row is not None
    return {table: int(n) for table, n in zip(COUNTED_TABLES, row, strict=True)}


def assertion_count(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM assertions").fetchone()
    return 0 if row is None else int(row[0])


def last_lsn(conn: Conn) -> int:
    row = conn.execute("SELECT last_lsn FROM stemedb_lsn WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def disk_bytes(conn: Conn) -> int:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return 0 if row is None else int(row[0])


# -- views ---------------------------------------------------------------------------------


def put_views(conn: Conn, views: Sequence[ViewRow]) -> None:
    with conn.transaction():
        conn.cursor().executemany(
            "INSERT INTO views VALUES (%s, %s, %s, %s, %s) ON CONFLICT (subject, predicate)"
            " DO UPDATE SET lsn = excluded.lsn, computed_at = excluded.computed_at,"
            " result = excluded.result WHERE excluded.lsn >= views.lsn",
            views,
        )


def view(conn: Conn, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
    row = conn.execute(
        "SELECT lsn, computed_at, result FROM views WHERE subject = %s AND predicate = %s",
        (subject, predicate),
    ).fetchone()
    return None if row is None else (int(row[0]), float(row[1]), bytes(row[2]))


def changes(conn: Conn, after: int, limit: int) -> list[ChangeRow]:
    return [
        ChangeRow(int(lsn), int(kind), bytes(ref).hex(), float(at))
        for lsn, kind, ref, at in conn.execute(
            "SELECT lsn, kind, ref, committed_at FROM changes WHERE lsn > %s ORDER BY lsn LIMIT %s",
            (after, limit),
        )
    ]
