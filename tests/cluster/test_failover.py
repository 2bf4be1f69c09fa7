"""The loss of the primary's machine under load, end to end (issue 15's first test).

etcd + a two-node Patroni cluster in synchronous mode (``support/patroni.py``, each as
its own user) + two real StemeDB servers in cluster mode on loopback
(``storage.backend = "postgres"`` with the multi-host DSN, schema applied by
``stemedb db migrate``). Independent HTTP clients drive signed single and batch writes
through both nodes with an API key created through node A; then ``kill_leader()`` —
``kill -9`` of the leader's Patroni and its postmaster — and the clients keep writing
(retrying what failed, as the SDK does). Checked: writes are acknowledged again through
both nodes within 30 s; every acknowledged assertion is in the database, at the LSN its
answer named; both nodes report the new primary in ``/v1/admin/cluster/status``; node
B's feed lists everything in strictly increasing LSN order, the writes made through
node A among them in the order A acknowledged them; a key revoked through node A is
refused by node B on the next request.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from support.patroni import PatroniCluster
from support.server import ServerProcess, free_port

from stemedb.model.signing import AgentKey, sign_assertion

pytestmark = pytest.mark.slow

ROOT_KEY = "root-failover-" + "7a1c" * 10
RESUME_BOUND_SECONDS = 30.0
WRITERS = 2
BATCH = 5
LOAD_BEFORE_KILL_SECONDS = 3.0
LOAD_AFTER_RESUME_SECONDS = 2.0


@dataclass(frozen=True)
class Ack:
    node: str
    id: str
    lsn: int
    sent_at: float


@dataclass
class Load:
    """What the writer threads were told by the nodes."""

    acks: list[Ack] = field(default_factory=list)
    failures: list[tuple[str, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def acked_after(self, node: str, moment: float) -> bool:
        with self.lock:
            return any(a.node == node and a.sent_at > moment for a in self.acks)


def _node_env(dsn: str, patroni: PatroniCluster, node_id: str, port: int) -> dict[str, str]:
    return {
        "STEMEDB_STORAGE_BACKEND": "postgres",
        "STEMEDB_STORAGE_POSTGRES_DSN": dsn,
        "STEMEDB_AUTH_ENABLED": "true",
        "STEMEDB_ROOT_API_KEY": ROOT_KEY,
        "STEMEDB_CLUSTER_NODE_ID": node_id,
        "STEMEDB_CLUSTER_ADVERTISE_URL": f"http://127.0.0.1:{port}",
        "STEMEDB_CLUSTER_HEARTBEAT_SECONDS": "1",
        "STEMEDB_CLUSTER_PATRONI_URL": ",".join(n.rest_url for n in patroni.nodes),
    }


@pytest.fixture
def two_nodes(
    patroni: PatroniCluster, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    dsn = patroni.create_database()
    migrate = subprocess.run(
        [str(Path(sys.executable).with_name("stemedb")), "db", "migrate"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")},
            "STEMEDB_STORAGE_BACKEND": "postgres",
            "STEMEDB_STORAGE_POSTGRES_DSN": dsn,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    nodes: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            nodes.append(
                ServerProcess(
                    tmp_path / f"node-{name}",
                    tmp_path / f"node-{name}.log",
                    port=port,
                    isolated=True,
                    **_node_env(dsn, patroni, name, port),
                )
            )
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()


def _create_key(node: ServerProcess, role: str) -> dict[str, Any]:
    with node.client() as client:
        made = client.post(
            "/v1/admin/api-keys",
            json={"name": f"failover-{role}-{uuid.uuid4().hex[:6]}", "role": role},
            headers={"x-api-key": ROOT_KEY},
        )
    assert made.status_code == 201, made.text
    return dict(made.json())


def _write_loop(
    writer: int, nodes: dict[str, ServerProcess], secret: str, load: Load, run: str
) -> None:
    """Alternate the nodes; every third operation a batch. A failed operation is sent
    again (the same signed records) until a node acknowledges it or the test stops."""
    key = AgentKey.from_seed(bytes([writer + 7]) * 32)
    headers = {"x-api-key": secret, "content-type": "application/json"}
    clients = {name: httpx.Client(base_url=n.url, timeout=10.0) for name, n in nodes.items()}
    names = itertools.cycle(sorted(nodes))
    try:
        for op in itertools.count():
            if load.stop.is_set():
                return
            records = [
                sign_assertion(
                    key,
                    subject=f"failover/{run}/{writer}/{op}",
                    predicate="p",
                    object=i,
                    confidence=0.6,
                )
                for i in range(BATCH if op % 3 == 2 else 1)
            ]
            while not load.stop.is_set():
                name = next(names)
                sent = time.monotonic()
                try:
                    if len(records) == 1:
                        answer = clients[name].post(
                            "/v1/assert", content=msgspec.json.encode(records[0]), headers=headers
                        )
                        if answer.status_code in (200, 201):
                            body = answer.json()
                            with load.lock:
                                load.acks.append(Ack(name, body["id"], body["lsn"], sent))
                            break
                    else:
                        payload = {"assertions": [msgspec.to_builtins(r) for r in records]}
                        answer = clients[name].post(
                            "/v1/assert/batch",
                            content=msgspec.json.encode(payload),
                            headers=headers,
                        )
                        if answer.status_code in (200, 201, 207):
                            results = answer.json()["results"]
                            done = [r for r in results if r["status"] in ("created", "exists")]
                            with load.lock:
                                load.acks.extend(Ack(name, r["id"], r["lsn"], sent) for r in done)
                            if len(done) == len(records):
                                break
                    with load.lock:
                        load.failures.append(
                            (name, sent, f"{answer.status_code} {answer.text[:200]}")
                        )
                except httpx.HTTPError as exc:
                    with load.lock:
                        load.failures.append((name, sent, repr(exc)))
                time.sleep(0.05)
    finally:
        for client in clients.values():
            client.close()


def _feed(node: ServerProcess) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    with node.client() as client:
        while True:
            page = client.get(
                "/v1/feed", params={"after": after, "limit": 1000}, headers={"x-api-key": ROOT_KEY}
            )
            assert page.status_code == 200, page.text
            body = page.json()
            if not body["items"]:
                return items
            items.extend(body["items"])
            after = body["next_after"]


def _primary_seen_by(node: ServerProcess) -> str | None:
    with node.client() as client:
        status = client.get("/v1/admin/cluster/status", headers={"x-api-key": ROOT_KEY})
    if status.status_code != 200:
        return None
    primary: str | None = status.json().get("database", {}).get("primary")
    return primary


def test_the_loss_of_the_primary_loses_no_acknowledged_write(
    patroni: PatroniCluster, two_nodes: tuple[ServerProcess, ServerProcess]
) -> None:
    a, b = two_nodes
    nodes = {"a": a, "b": b}
    writer_key = _create_key(a, "writer")  # created through A, used on both
    run = uuid.uuid4().hex[:8]
    load = Load()
    threads = [
        threading.Thread(target=_write_loop, args=(w, nodes, writer_key["secret"], load, run))
        for w in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(LOAD_BEFORE_KILL_SECONDS)
        assert load.acked_after("a", 0) and load.acked_after("b", 0), load.failures[-5:]
        old_leader = patroni.kill_leader()
        killed_at = time.monotonic()
        deadline = killed_at + RESUME_BOUND_SECONDS
        while not (load.acked_after("a", killed_at) and load.acked_after("b", killed_at)):
            assert time.monotonic() < deadline, (
                f"writes did not resume within {RESUME_BOUND_SECONDS} s",
                load.failures[-5:],
            )
            time.sleep(0.1)
        resumed_after = time.monotonic() - killed_at
        time.sleep(LOAD_AFTER_RESUME_SECONDS)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(30)
    print(f"writes resumed through both nodes {resumed_after:.1f} s after the kill")
    new_leader = patroni.wait_leader(10, other_than=old_leader.name)

    # every acknowledged assertion is there, at the LSN its answer named
    feed = _feed(b)
    lsns = [item["lsn"] for item in feed]
    assert lsns == sorted(set(lsns)), "node B's feed is not in strictly increasing LSN order"
    at = {item["id"]: item["lsn"] for item in feed}
    missing = [ack for ack in load.acks if at.get(ack.id) != ack.lsn]
    assert not missing, (len(missing), missing[:5])
    assert len({ack.id for ack in load.acks}) >= 10
    # what A acknowledged, B's feed delivers in A's LSN order
    through_a = sorted({(ack.lsn, ack.id) for ack in load.acks if ack.node == "a"})
    ids_a = {record_id for _, record_id in through_a}
    assert [(i["lsn"], i["id"]) for i in feed if i["id"] in ids_a] == through_a
    with a.client() as client:  # and A reads them too
        sample = [ack.id for ack in load.acks[:: max(1, len(load.acks) // 20)]]
        for record_id in sample:
            got = client.get(f"/v1/assertions/{record_id}", headers={"x-api-key": ROOT_KEY})
            assert got.status_code == 200, got.text

    # both nodes report the new primary
    deadline = time.monotonic() + 15
    seen: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        seen = {name: _primary_seen_by(node) for name, node in nodes.items()}
        if set(seen.values()) == {new_leader.name}:
            break
        time.sleep(0.5)
    assert seen == {"a": new_leader.name, "b": new_leader.name}

    # a key revoked through A is refused by B on the next request
    other = _create_key(a, "writer")
    signer = AgentKey.from_seed(b"\x55" * 32)

    def write_through_b(value: int) -> httpx.Response:
        record = sign_assertion(
            signer, subject=f"failover/{run}/revoked", predicate="p", object=value, confidence=0.5
        )
        with b.client() as client:
            return client.post(
                "/v1/assert",
                content=msgspec.json.encode(record),
                headers={"x-api-key": other["secret"], "content-type": "application/json"},
            )

    assert write_through_b(1).status_code == 201
    with a.client() as client:
        revoked = client.delete(
            f"/v1/admin/api-keys/{other['id']}", headers={"x-api-key": ROOT_KEY}
        )
    assert revoked.status_code in (200, 204), revoked.text
    refused = write_through_b(2)
    assert refused.status_code == 401, refused.text
