"""The etcd + Patroni harness itself (``support/patroni.py``): the cluster forms with a
sync standby, a commit on the leader is on the standby when it is acknowledged, and the
standby is promoted after ``kill_leader()`` with every acknowledged row."""

from __future__ import annotations

import time

import psycopg
import pytest
from support.patroni import TTL_SECONDS, PatroniCluster

pytestmark = pytest.mark.slow

PROMOTION_BOUND_SECONDS = 30.0


def test_forms_with_a_sync_standby_and_an_acknowledged_commit_is_on_it(
    patroni: PatroniCluster,
) -> None:
    leader, standby = patroni.leader(), patroni.sync_standby()
    assert leader is not None and standby is not None and leader is not standby
    dsn = patroni.create_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync = conn.execute(
            "SELECT application_name, sync_state FROM pg_stat_replication"
        ).fetchall()
        assert sync == [(standby.name, "sync")]
        conn.execute("CREATE TABLE harness (x int)")
        # remote_apply: acknowledged once the standby has replayed it
        conn.execute("SET synchronous_commit = remote_apply")
        conn.execute("INSERT INTO harness VALUES (1)")
    dbname = dsn.split("dbname=")[1].split()[0]
    with psycopg.connect(standby.admin_dsn(dbname), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute("SELECT x FROM harness").fetchall() == [(1,)]


def test_the_standby_is_promoted_after_kill_leader_with_every_acknowledged_row(
    patroni: PatroniCluster,
) -> None:
    standby = patroni.sync_standby()
    assert standby is not None
    dsn = patroni.create_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE harness (x int)")
        for i in range(50):  # synchronous_commit = on: on the standby's disk when acked
            conn.execute("INSERT INTO harness VALUES (%s)", (i,))
    killed_at = time.monotonic()
    old = patroni.kill_leader()
    assert old.spawned is None and patroni.leader() is not old
    new = patroni.wait_leader(PROMOTION_BOUND_SECONDS, other_than=old.name)
    promoted_after = time.monotonic() - killed_at
    assert new is standby
    # the leader key expires ttl seconds after the last renewal, not before
    assert TTL_SECONDS - 2 < promoted_after < PROMOTION_BOUND_SECONDS, promoted_after
    with psycopg.connect(dsn, autocommit=True) as conn:  # the DSN finds the new primary
        assert conn.execute("SELECT count(*) FROM harness").fetchone() == (50,)
        conn.execute("INSERT INTO harness VALUES (50)")
