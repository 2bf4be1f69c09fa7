"""Fixtures of the cluster-mode tests that need etcd + Patroni (``support/patroni.py``).

One Patroni cluster serves the whole session (forming one takes 10-25 s); a test that
needs it healthy gets it back with a leader and a sync standby (a node killed by an
earlier test is started again and rejoins as the standby)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.patroni import PatroniCluster, unavailable_reason


@pytest.fixture(scope="session")
def patroni_session() -> Iterator[PatroniCluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PatroniCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def patroni(patroni_session: PatroniCluster) -> PatroniCluster:
    """The session's cluster, healthy: a leader and a streaming sync standby."""
    for node in patroni_session.nodes:
        if node.spawned is None:
            patroni_session.revive(node)
    patroni_session.wait_healthy()
    return patroni_session
