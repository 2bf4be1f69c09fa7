"""Limits on connections, below the ASGI app (issue 17 item 6; docs/operations/security.md):
what uvicorn's httptools protocol does not bound by itself.

- **Header timeout** (``api.header_timeout_seconds``): a connection that has not sent a
  request's complete headers that long after it opened (or after the first byte of its
  next request) is closed; one that had started a request gets a ``408`` envelope
  first. Slowloris connections no longer stay open for ever. A request whose headers
  are in is bounded by ``api.request_timeout_seconds`` instead, an idle keep-alive
  connection by uvicorn's ``timeout_keep_alive``.
- **Connection cap** (``api.max_connections``, per HTTP process): a connection beyond
  it gets ``503 too_many_connections`` (with ``Retry-After``) and is closed at once, so
  a flood cannot exhaust the file descriptors; each refusal is counted
  (``stemedb_connections_refused_total``) and logged (at most one line per
  ``LOG_EVERY_SECONDS``, with the count since the last one). At start the soft
  ``RLIMIT_NOFILE`` is raised to fit the cap, or the cap is lowered to fit it (Redis
  does the same with ``maxclients``).
- **Request targets too long for the parser**: httptools cannot split a URL over 64 KiB
  and uvicorn then answers a plain-text 400; a target over ``MAX_TARGET_BYTES`` reaches
  the app with its query dropped and its path cut, marked so that the request screen
  answers ``414 uri_too_long`` in the envelope.

The protocol is a subclass of uvicorn's httptools protocol (or of
``api.http.uvicorn_patch``'s) that overrides the ``asyncio.Protocol`` methods
``connection_made``/``connection_lost`` and the httptools parser callbacks
``on_message_begin``/``on_headers_complete``, each calling uvicorn's own; it reads the
protocol's ``connections``, ``loop``, ``transport``, ``url`` and ``scope`` attributes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Iterator
from typing import ClassVar, Final

import msgspec
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stemedb.api.http.screen import TARGET_TOO_LONG_KEY

log = logging.getLogger("stemedb.api")

LOG_EVERY_SECONDS: Final = 10.0
MAX_TARGET_BYTES: Final = 60 * 1024  # httptools' URL parser stops at 64 KiB
KEPT_PATH_BYTES: Final = 1024
FD_RESERVE: Final = 256  # WAL, SQLite, readers, the writer link, logs: not for clients
RETRY_AFTER_SECONDS: Final = 1


def _envelope(status: bytes, code: str, type_name: str, message: str, **details: object) -> bytes:
    request_id = os.urandom(16).hex()
    body = msgspec.json.encode(
        {
            "error": {
                "code": code,
                "type": type_name,
                "message": message,
                "details": details,
                "retryable": True,
            },
            "request_id": request_id,
        }
    )
    head = (
        f"HTTP/1.1 {status.decode()}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
        f"retry-after: {RETRY_AFTER_SECONDS}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Throttled:
    """A warning at most once per ``LOG_EVERY_SECONDS``, counting what it skipped."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.skipped = 0
        self.last = -LOG_EVERY_SECONDS

    def event(self, total: int, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_SECONDS:
            self.skipped += 1
            return
        since = f", {self.skipped} more since the last such line" if self.skipped else ""
        log.warning(f"{self.text} ({total} in all{since})", *args)
        self.skipped = 0
        self.last = now


def fit_file_limit(max_connections: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to hold ``max_connections`` clients and
    ``FD_RESERVE`` more; if the hard limit does not allow it, the cap that fits
    (logged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max(1, soft - FD_RESERVE)
        log.warning(
            "api.max_connections = %d does not fit the open-file limit (%d, hard %s):"
            " serving at most %d connections per process; raise LimitNOFILE (systemd)"
            " or ulimit -n",
            max_connections,
            soft,
            "unlimited" if hard == resource.RLIM_INFINITY else hard,
            fitted,
        )
        return fitted
    return max_connections


class ConnectionLimits(Collector):
    """One HTTP process's connection limits and their counters (a Prometheus collector)."""

    def __init__(self, header_timeout_seconds: float, max_connections: int) -> None:
        self.header_timeout_seconds = header_timeout_seconds
        self.max_connections = max_connections
        self.refused = 0
        self.header_timeouts = 0
        self.open: set[object] = set()
        self._refusals = _Throttled(
            "max number of connections reached (api.max_connections = %d): refused a"
            " connection from %s"
        )
        self._timeouts = _Throttled(
            "closed a connection from %s that sent no complete request headers within"
            " api.header_timeout_seconds = %g"
        )
        self.refusal = _envelope(
            b"503 Service Unavailable",
            "too_many_connections",
            "UnavailableError",
            f"max number of connections reached (api.max_connections = {max_connections})",
            max_connections=max_connections,
        )
        self.timeout_answer = _envelope(
            b"408 Request Timeout",
            "header_timeout",
            "TimeoutError",
            f"the request headers did not arrive within {header_timeout_seconds:g} s",
        )

    def refuse(self, transport: asyncio.Transport) -> None:
        self.refused += 1
        peer = transport.get_extra_info("peername")
        self._refusals.event(self.refused, self.max_connections, peer[0] if peer else "?")
        transport.write(self.refusal)
        transport.close()

    def timed_out(self, transport: asyncio.Transport, started: bool) -> None:
        self.header_timeouts += 1
        peer = transport.get_extra_info("peername")
        self._timeouts.event(
            self.header_timeouts, peer[0] if peer else "?", self.header_timeout_seconds
        )
        if started:
            transport.write(self.timeout_answer)
        transport.close()

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "stemedb_connections_refused",
            "Connections refused because api.max_connections were open.",
            value=self.refused,
        )
        yield CounterMetricFamily(
            "stemedb_connections_header_timeouts",
            "Connections closed that sent no complete request headers within"
            " api.header_timeout_seconds.",
            value=self.header_timeouts,
        )
        yield GaugeMetricFamily(
            "stemedb_connections_open", "Open client connections.", value=len(self.open)
        )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under ``limits`` (set by ``guarded_protocol``)."""

    limits: ClassVar[ConnectionLimits]
    _header_timer: asyncio.TimerHandle | None = None
    _refused = False
    _started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limits = self.limits
        if len(limits.open) >= limits.max_connections:
            self._refused = True
            limits.refuse(transport)
            return
        limits.open.add(self)
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.limits.open.discard(self)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._started = False
        if len(self.url) > MAX_TARGET_BYTES:
            scope: dict[str, object] = self.scope  # type: ignore[assignment]
            scope[TARGET_TOO_LONG_KEY] = len(self.url)
            self.url = self.url.split(b"?", 1)[0][:KEPT_PATH_BYTES]
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._header_timed_out
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.limits.timed_out(self.transport, self._started)


def guarded_protocol(
    base: type[HttpToolsProtocol], limits: ConnectionLimits
) -> type[GuardedProtocol]:
    """``base`` (uvicorn's httptools protocol or a subclass) with ``limits`` applied to
    every connection."""
    return type("GuardedProtocol", (GuardedProtocol, base), {"limits": limits})


def limited_protocol(
    header_timeout_seconds: float,
    max_connections: int,
    base: type[asyncio.Protocol] | str,
    registry: CollectorRegistry,
) -> type[GuardedProtocol]:
    """The ``http`` protocol class of ``uvicorn.Config``: ``base`` (the patched protocol
    of ``api.http.uvicorn_patch``, or ``"httptools"``: uvicorn's own) under these limits,
    whose counters ``registry`` exposes."""
    limits = ConnectionLimits(header_timeout_seconds, fit_file_limit(max_connections))
    registry.register(limits)
    if isinstance(base, str) or not issubclass(base, HttpToolsProtocol):
        base = HttpToolsProtocol
    return guarded_protocol(base, limits)


__all__ = [
    "MAX_TARGET_BYTES",
    "ConnectionLimits",
    "GuardedProtocol",
    "fit_file_limit",
    "guarded_protocol",
    "limited_protocol",
]
