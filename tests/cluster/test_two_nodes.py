"""The simplest cluster, as an operator first tries it: two StemeDB server processes
with the same ``storage.postgres_dsn`` on one real PostgreSQL, no Patroni (issue 15,
docs/design/cluster.md). Node A runs one HTTP process, node B two (``api.workers``),
each committing on its own."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg import sql
from support.postgres import PostgresServer
from support.server import ServerProcess, cluster_node

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

WRITERS_PER_NODE = 3
LOAD_SECONDS = 3.0
BATCH = 4


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.database() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def nodes(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Node A migrates the empty database on start (``auto_migrate``); node B, started
    after it, finds the schema current."""
    base = tmp_path_factory.mktemp("two-nodes")
    a = cluster_node(base, "a", database, STEMEDB_STORAGE_AUTO_MIGRATE="true")
    try:
        b = cluster_node(base, "b", database, STEMEDB_API_WORKERS="2")
    except BaseException:
        a.stop()
        raise
    yield a, b
    assert b.stop() == 0, b.log_path.read_text()[-2000:]
    assert a.stop() == 0, a.log_path.read_text()[-2000:]


def claim(agent: AgentKey, subject: str, value: object, predicate: str = "p") -> Assertion:
    return sign_assertion(agent, subject=subject, predicate=predicate, object=value, confidence=0.5)  # type: ignore[arg-type]


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(
        path, content=msgspec.json.encode(body), headers={"content-type": "application/json"}
    )


def feed(node: ServerProcess, after: int = 0) -> list[dict[str, Any]]:
    """Every feed item after ``after``, page by page."""
    items: list[dict[str, Any]] = []
    with node.client() as client:
        while True:
            page = client.get("/v1/feed", params={"after": after, "limit": 500}).json()
            items.extend(page["items"])
            if not page["items"]:
                return items
            after = page["next_after"]


def test_writes_through_either_node_are_readable_through_the_other(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    agent = AgentKey.from_seed(b"\x01" * 32)
    for writer, reader in (nodes, nodes[::-1]):
        subject = f"cluster/rw-{writer.port}"
        with writer.client() as w, reader.client() as r:
            written = post(w, "/v1/assert", claim(agent, subject, "v"))
            assert written.status_code == 201, written.text
            lsn = written.json()["lsn"]
            got = r.get(f"/v1/assertions/{written.json()['id']}", params={"min_lsn": lsn})
            assert got.status_code == 200, got.text
            answer = r.get(
                "/v1/query", params={"subject": subject, "predicate": "p", "min_lsn": lsn}
            ).json()
            assert [c["id"] for c in answer["claims"]] == [written.json()["id"]]
            # without min_lsn too, once the other node's notification arrived
            deadline = time.monotonic() + 5
            while r.get("/ready").json()["applied_lsn"] < lsn and time.monotonic() < deadline:
                time.sleep(0.02)
            assert r.get("/ready").json()["applied_lsn"] >= lsn


def test_the_same_content_through_both_nodes_at_once_is_one_201_and_one_200(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    agent = AgentKey.from_seed(b"\x02" * 32)
    for round_ in range(15):
        record = claim(agent, "cluster/dup", round_)
        answers: list[httpx.Response] = []
        start = threading.Barrier(2)

        threads = [
            threading.Thread(target=_send_at_once, args=(n, record, start, answers)) for n in nodes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
        assert len({(a.json()["id"], a.json()["lsn"]) for a in answers}) == 1


def _send_at_once(
    node: ServerProcess, record: Assertion, start: threading.Barrier, answers: list[httpx.Response]
) -> None:
    with node.client() as client:
        start.wait()
        answers.append(post(client, "/v1/assert", record))


def _write_load(
    node: ServerProcess,
    agent: AgentKey,
    stop: threading.Event,
    acknowledged: dict[str, int],
    lock: threading.Lock,
) -> None:
    """Single and batch writes until ``stop``; what got a 201 goes into ``acknowledged``
    (id -> LSN). Errors of a dying node are expected, not acknowledged."""
    index = 0
    with httpx.Client(base_url=node.url, timeout=10) as client:
        while not stop.is_set():
            index += 1
            subject = f"cluster/load-{agent.agent_id[:8]}-{index % 5}"
            try:
                if index % 3:
                    answer = post(client, "/v1/assert", claim(agent, subject, index))
                    got = [answer.json()] if answer.status_code == 201 else []
                else:
                    records = [claim(agent, subject, f"{index}-{j}") for j in range(BATCH)]
                    answer = post(client, "/v1/assert/batch", {"assertions": records})
                    results = answer.json()["results"] if answer.status_code == 207 else []
                    got = [r for r in results if r["status"] == "created"]
            except (httpx.HTTPError, ValueError):
                continue
            with lock:
                for result in got:
                    acknowledged[result["id"]] = result["lsn"]


def test_feed_on_either_node_lists_every_acknowledged_record_in_increasing_lsn_order(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    """Concurrent writers on both nodes; a reader on each node polls the feed during
    the writes, another follows its SSE stream. A reader's items are strictly
    increasing, and once the writes stop it has seen exactly the LSNs the full feed
    lists: no record appeared later below an LSN it had already passed (no gap that
    later filled in)."""
    start_lsn = feed(nodes[0])[-1]["lsn"] if feed(nodes[0]) else 0
    stop = threading.Event()
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    seen: dict[int, list[int]] = {0: [], 1: []}
    last_acknowledged: list[int] = []  # set once the writers stopped
    writers = [
        threading.Thread(
            target=_write_load,
            args=(node, AgentKey.from_seed(bytes([16 + 8 * n + i]) * 32), stop, acknowledged, lock),
        )
        for n, node in enumerate(nodes)
        for i in range(WRITERS_PER_NODE)
    ]

    def read(index: int) -> None:
        after = start_lsn
        with nodes[index].client() as client:
            while not (last_acknowledged and after >= last_acknowledged[0]):
                page = client.get("/v1/feed", params={"after": after, "limit": 200}).json()
                lsns = [item["lsn"] for item in page["items"]]
                assert lsns == sorted(set(lsns)) and all(lsn > after for lsn in lsns)
                seen[index].extend(lsns)
                after = page["next_after"]
                time.sleep(0.005)

    streamed: dict[int, list[int]] = {0: [], 1: []}

    def stream(index: int) -> None:
        """The SSE stream of the node, from the same start."""
        with (
            httpx.Client(base_url=nodes[index].url, timeout=20) as client,
            client.stream("GET", "/v1/feed/stream", params={"after": start_lsn}) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("id:"):
                    streamed[index].append(int(line[3:]))
                if last_acknowledged and streamed[index][-1:] >= last_acknowledged:
                    return

    readers = [
        threading.Thread(target=target, args=(i,)) for target in (read, stream) for i in (0, 1)
    ]
    for thread in [*writers, *readers]:
        thread.start()
    time.sleep(LOAD_SECONDS)
    stop.set()
    for thread in writers:
        thread.join()
    with nodes[0].client() as client:  # the last write: every reader waits for it
        last = post(client, "/v1/assert", claim(AgentKey.from_seed(b"\x0f" * 32), "cluster/end", 0))
    acknowledged[last.json()["id"]] = last.json()["lsn"]
    last_acknowledged.append(max(acknowledged.values()))
    for thread in readers:
        thread.join(30)
    assert not any(thread.is_alive() for thread in readers), "a feed reader is stuck"
    assert len(acknowledged) > 50, "the load did not get going"
    for index, node in enumerate(nodes):
        full = [item["lsn"] for item in feed(node, start_lsn)]
        assert full == list(range(start_lsn + 1, start_lsn + 1 + len(full)))  # contiguous
        assert seen[index] == full  # what the poller saw during the writes, in order
        assert streamed[index] == full  # and what the SSE stream sent
        listed = {item["id"]: item["lsn"] for item in feed(node, start_lsn)}
        missing = {i: lsn for i, lsn in acknowledged.items() if listed.get(i) != lsn}
        assert not missing, f"node {index}: acknowledged but not listed: {list(missing)[:5]}"


def test_kill_9_of_one_node_under_load_loses_nothing_it_acknowledged(
    nodes: tuple[ServerProcess, ServerProcess], database: str, tmp_path: Path
) -> None:
    victim = cluster_node(tmp_path, "victim", database)
    _, survivor = nodes
    stop = threading.Event()
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    writers = [
        threading.Thread(
            target=_write_load,
            args=(node, AgentKey.from_seed(bytes([64 + 4 * n + i]) * 32), stop, acknowledged, lock),
        )
        for n, node in enumerate((victim, survivor))
        for i in range(WRITERS_PER_NODE)
    ]
    for thread in writers:
        thread.start()
    time.sleep(LOAD_SECONDS / 2)
    os.kill(victim.proc.pid, signal.SIGKILL)
    time.sleep(LOAD_SECONDS / 2)  # the survivor keeps committing
    stop.set()
    for thread in writers:
        thread.join()
    victim.stop()
    assert len(acknowledged) > 20, "the load did not get going"
    listed = {item["id"]: item["lsn"] for item in feed(survivor)}
    lost = [i for i, lsn in acknowledged.items() if listed.get(i) != lsn]
    assert not lost, f"acknowledged but lost: {lost[:5]}"
    with survivor.client() as client:  # the survivor still writes
        agent = AgentKey.from_seed(b"\x7f" * 32)
        assert post(client, "/v1/assert", claim(agent, "cluster/after-kill", 1)).status_code == 201


def test_ready_says_not_ready_while_postgresql_refuses_connections(
    nodes: tuple[ServerProcess, ServerProcess],
    database: str,
    postgres_server: PostgresServer,
) -> None:
    name = database.rsplit("dbname=", 1)[1]
    a, _ = nodes
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        ident = sql.Identifier(name)
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            agent = AgentKey.from_seed(b"\x05" * 32)
            answers: dict[str, httpx.Response] = {}
            asks = {
                "ready": lambda c: c.get("/ready"),
                "write": lambda c: post(c, "/v1/assert", claim(agent, "cluster/down", 1)),
            }
            threads = [
                threading.Thread(target=_ask, args=(a, name, ask, answers))
                for name, ask in asks.items()
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            ready, refused = answers["ready"], answers["write"]
            assert ready.status_code == 503, ready.text
            assert any(r.startswith("store:") for r in ready.json()["reasons"])
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["retryable"] is True
            assert "retry-after" in refused.headers
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))
    with a.client() as client:  # back once PostgreSQL is
        deadline = time.monotonic() + 15
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/ready").status_code == 200
        agent = AgentKey.from_seed(b"\x05" * 32)
        assert post(client, "/v1/assert", claim(agent, "cluster/down", 1)).status_code == 201


def _ask(
    node: ServerProcess,
    name: str,
    ask: Callable[[httpx.Client], httpx.Response],
    answers: dict[str, httpx.Response],
) -> None:
    with node.client() as client:
        answers[name] = ask(client)
