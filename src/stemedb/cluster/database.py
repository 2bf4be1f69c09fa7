"""The PostgreSQL side of the cluster status: primary, standbys with lag, synchronous.

Without ``cluster.patroni_url``: from the server ``storage.postgres_dsn`` reaches
(``pg_stat_replication`` of the primary; ``synchronous`` when a standby's
``sync_state`` is ``sync`` or ``quorum``). With it (one URL or several, comma-separated,
tried in order): Patroni's ``GET /cluster`` names the leader (``primary``), the
standbys and which is ``sync_standby``, and ``GET /config`` says whether
``synchronous_mode`` is on; lag in bytes comes from Patroni and the lag in seconds from
``pg_stat_replication`` (Patroni's member name is the standby's ``application_name``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import httpx
import msgspec

from stemedb.cluster.health import DatabaseFacts
from stemedb.errors import StemeError
from stemedb.wire import DatabaseStatus, Standby

PATRONI_TIMEOUT_SECONDS: Final = 2.0
STANDBY_ROLES: Final = frozenset({"replica", "sync_standby", "standby_leader"})

ReadReplication = Callable[[], Any]  # NodeRegistry.replication (a Replication)


class _Member(msgspec.Struct, kw_only=True):
    name: str
    role: str
    state: str = ""
    host: str = ""
    port: int = 0
    lag: int | str | None = None


class _Cluster(msgspec.Struct, kw_only=True):
    members: list[_Member] = msgspec.field(default_factory=list)


class _Config(msgspec.Struct, kw_only=True):
    synchronous_mode: bool = False


def patroni_urls(setting: str) -> list[str]:
    return [url.strip().rstrip("/") for url in setting.split(",") if url.strip()]


def ask_patroni(urls: list[str]) -> tuple[_Cluster, _Config] | str:
    """Patroni's view from the first of ``urls`` that answers, else why none did."""
    failures = []
    for url in urls:
        try:
            with httpx.Client(timeout=PATRONI_TIMEOUT_SECONDS) as client:
                members = client.get(f"{url}/cluster")
                members.raise_for_status()
                config = client.get(f"{url}/config")
                config.raise_for_status()
            return (
                msgspec.json.decode(members.content, type=_Cluster),
                msgspec.json.decode(config.content, type=_Config),
            )
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
    return "Patroni does not answer (" + "; ".join(failures) + ")"


def database_facts(read_replication: ReadReplication, patroni_url: str) -> DatabaseFacts:
    """What the status and the health rules need to know about PostgreSQL."""
    errors: list[str] = []
    replication = None
    try:
        replication = read_replication()
    except StemeError as exc:
        errors.append(f"PostgreSQL: {exc.message}")
    urls = patroni_urls(patroni_url)
    if urls:
        return _with_patroni(replication, ask_patroni(urls), errors)
    if replication is None or replication.in_recovery:
        if replication is not None:
            errors.append(f"{replication.primary} is a standby (in recovery), not the primary")
        empty = DatabaseStatus(primary=None, standbys=[], synchronous=False)
        return DatabaseFacts(status=empty, reachable=False, synchronous_wanted=False, errors=errors)
    status = DatabaseStatus(
        primary=replication.primary,
        standbys=replication.standbys,
        synchronous=bool(replication.synchronous),
    )
    return DatabaseFacts(
        status=status,
        reachable=True,
        synchronous_wanted=bool(replication.synchronous_names.strip()),
        errors=errors,
    )


def _with_patroni(
    replication: Any, patroni: tuple[_Cluster, _Config] | str, errors: list[str]
) -> DatabaseFacts:
    reachable = replication is not None and not replication.in_recovery
    seconds = {s.name: s.lag_seconds for s in replication.standbys} if reachable else {}
    if isinstance(patroni, str):
        errors.append(patroni)
        status = DatabaseStatus(
            primary=replication.primary if reachable else None,
            standbys=replication.standbys if reachable else [],
            synchronous=bool(replication.synchronous) if reachable else False,
        )
        return DatabaseFacts(
            status=status,
            reachable=reachable,
            synchronous_wanted=True,
            patroni_asked=True,
            errors=errors,
        )
    members, config = patroni
    leader = next((m for m in members.members if m.role == "leader"), None)
    standbys = [
        Standby(
            name=m.name,
            lag_bytes=m.lag if isinstance(m.lag, int) else None,
            lag_seconds=seconds.get(m.name),
        )
        for m in members.members
        if m.role in STANDBY_ROLES
    ]
    if leader is None:
        errors.append("Patroni has no leader")
    status = DatabaseStatus(
        primary=leader.name if leader is not None else None,
        standbys=standbys,
        synchronous=any(m.role == "sync_standby" for m in members.members),
    )
    return DatabaseFacts(
        status=status,
        reachable=reachable and leader is not None,
        synchronous_wanted=config.synchronous_mode,
        patroni_asked=True,
        patroni_answered=True,
        errors=errors,
    )


__all__ = ["ask_patroni", "database_facts", "patroni_urls"]
