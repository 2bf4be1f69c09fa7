"""The one place that reaches into uvicorn's internals: a copy of part of uvicorn
0.54.0's ``RequestResponseCycle.send`` (``uvicorn/protocols/http/httptools_impl.py``),
and the httptools protocol that uses it.

What is copied, and why:

- ``LeanCycle.send`` is uvicorn 0.54.0's ``RequestResponseCycle.send`` for the
  ``http.response.start`` message (status line, header checks, ``content-length`` /
  ``transfer-encoding`` / ``connection`` handling, the ``connection: close`` and
  ``transfer-encoding: chunked`` it adds), with one change: the header names and values
  are checked with one regular-expression search each over all of them joined, instead
  of two searches per header (the same characters are refused either way). The route
  guard's limit headers (``api.guard.gate``) add eight headers to an answer. Every
  other message, and a start while writing is paused, the peer is gone or the access
  log is on, goes to uvicorn's own ``send``.
- ``CoalescingHttpToolsProtocol`` overrides two methods of uvicorn's
  ``HttpToolsProtocol``: ``connection_made`` (to put a ``CoalescingTransport``,
  ``api.http.transport``, under it) and the private ``_start_asgi_task`` (to turn the
  cycle uvicorn just built into a ``LeanCycle`` by swapping its ``__class__``: uvicorn
  creates the cycle inline in ``on_headers_complete``, and a subclass that adds no
  state is the least code to copy).

It also imports uvicorn's private names ``HEADER_RE``, ``HEADER_VALUE_RE``,
``STATUS_LINE`` and ``uvicorn._types``. ``pyproject.toml`` pins uvicorn to exactly the
version this was copied from (``COPIED_FROM_UVICORN``). With another uvicorn,
``http_protocol`` does not install the patch: it logs a warning and answers uvicorn's
stock ``"httptools"`` protocol (the same bytes on the wire, a little slower); a uvicorn
without the private names above fails the import with an error that says so.
``tests/unit/api/test_uvicorn_patch.py`` checks, on real servers over loopback sockets,
that the answers are byte for byte uvicorn's, and that another version is refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import uvicorn

from stemedb.api.http.transport import CoalescingTransport

log = logging.getLogger("stemedb.api")

COPIED_FROM_UVICORN: Final = "0.54.0"
STOCK_PROTOCOL: Final = "httptools"

try:
    from uvicorn._types import ASGI3Application, ASGISendEvent
    from uvicorn.protocols.http.httptools_impl import (
        HEADER_RE,
        HEADER_VALUE_RE,
        STATUS_LINE,
        HttpToolsProtocol,
        RequestResponseCycle,
    )
except ImportError as exc:  # not the uvicorn this was copied from: say so
    raise ImportError(
        f"api.http.uvicorn_patch was copied from uvicorn {COPIED_FROM_UVICORN} and uses"
        f" its private names; uvicorn {uvicorn.__version__} is installed and lacks one"
        f" ({exc}): install uvicorn=={COPIED_FROM_UVICORN} (pyproject.toml pins it)"
    ) from exc


def patch_refusal(installed: str = uvicorn.__version__) -> str | None:
    """Why the patch must not be used with uvicorn ``installed`` (None: it may)."""
    if installed != COPIED_FROM_UVICORN:
        return (
            f"uvicorn {installed} is installed; api.http.uvicorn_patch was copied from"
            f" uvicorn {COPIED_FROM_UVICORN}"
        )
    return None


def http_protocol(installed: str = uvicorn.__version__) -> type[asyncio.Protocol] | str:
    """The ``http`` setting of ``uvicorn.Config``: the patched protocol, or uvicorn's
    stock one (with a warning) when the installed uvicorn is not the one it was copied
    from."""
    refusal = patch_refusal(installed)
    if refusal is not None:
        log.warning("%s: serving with uvicorn's stock %s protocol", refusal, STOCK_PROTOCOL)
        return STOCK_PROTOCOL
    return CoalescingHttpToolsProtocol


class LeanCycle(RequestResponseCycle):
    """uvicorn's request-response cycle with a cheaper check of the response headers."""

    async def send(self, message: ASGISendEvent) -> None:
        if (
            self.response_started
            or message["type"] != "http.response.start"
            or self.flow.write_paused
            or self.disconnected
            or self.access_log
        ):
            await super().send(message)
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        headers = self.default_headers + list(message.get("headers", []))
        if HEADER_RE.search(b"".join([name for name, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join([value for _, value in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
            content.extend((name, b": ", value, b"\r\n"))
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``, with ``LeanCycle``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = LeanCycle
        super()._start_asgi_task(cycle, app)


__all__ = [
    "COPIED_FROM_UVICORN",
    "CoalescingHttpToolsProtocol",
    "LeanCycle",
    "http_protocol",
    "patch_refusal",
]
