"""Protected mode and the names this node answers to (issue 17; docs/operations/security.md).

**Protected mode** (like Redis's): with API keys off (``[auth] enabled = false``) the
node serves loopback clients only. A non-loopback ``api.bind`` with keys off refuses to
start (``check_protected_mode``), with one line naming the two ways out: keys on with a
root key, or ``[api] allow_unauthenticated_network = true`` — an explicit opt-out that
is logged on every start, shown on ``/health`` and by the ``stemedb_unauthenticated_network``
gauge. A request from a non-loopback client that still reaches a protected node (a
proxy on the same host forwarding ``X-Forwarded-For``) is refused with 403
``protected_mode`` (``Names.client_allowed``).

**Host names** (DNS rebinding): a ``Host`` header must name this node —
an IP literal (a rebinding attack needs a name it controls, never a literal),
``localhost``, the host of ``api.bind`` or of ``cluster.advertise_url``, or an entry
of ``[api] allowed_hosts`` (``"stemedb.example.com"``, ``".example.com"`` for any name
under it, ``"*"`` for any name at all). Others get ``421 misdirected_host``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from typing import Final
from urllib.parse import urlsplit

from stemedb.config import Config
from stemedb.errors import AuthorizationError, ValidationError

log = logging.getLogger("stemedb.api")

LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
_DECISIONS_SIZE: Final = 1024


def bind_host(bind: str) -> str:
    """The host part of ``host:port`` / ``[v6]:port`` (``""`` → ``127.0.0.1``)."""
    host = bind.rpartition(":")[0].strip("[]")
    return host or "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback only."""
    name = host.strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def unauthenticated_network(config: Config) -> bool:
    """Keys off and the explicit opt-out set: the node answers non-loopback clients."""
    return not config.auth.enabled and config.api.allow_unauthenticated_network


def check_protected_mode(config: Config) -> None:
    """Refuse to start on a non-loopback bind with keys off (unless opted out); warn on
    every start while opted out. Raises ``ValidationError`` code ``protected_mode``."""
    if config.auth.enabled:
        return
    host = bind_host(config.api.bind)
    if unauthenticated_network(config):
        log.warning(
            "[api] allow_unauthenticated_network = true and API keys are off: every"
            " route, /v1/admin/* included, is open to anyone who can reach %s; turn API"
            " keys on ([auth] enabled = true with a root key) to close it",
            config.api.bind,
        )
        return
    if not is_loopback(host):
        raise ValidationError(
            "api.bind",
            "protected_mode",
            f"refusing to start: api.bind {config.api.bind} is not a loopback address and"
            " API keys are off, so every route (/v1/admin/* included) would be open to the"
            " network; either turn keys on ([auth] enabled = true with STEMEDB_ROOT_API_KEY"
            " or [auth] root_api_key) or set [api] allow_unauthenticated_network = true",
            code="protected_mode",
        )


def warn_about_defaults(config: Config) -> None:
    """Warnings of the other defaults reviewed in docs/operations/security.md: a TLS
    private key others can read, CORS open to every origin on a node without keys."""
    key_file = config.tls.key_file
    if key_file:
        try:
            mode = os.stat(key_file).st_mode
        except OSError:
            mode = 0  # uvicorn names the missing file itself
        if mode & 0o077:
            log.warning(
                "tls.key_file %s is readable by other users (mode %o): chmod 600 it (owner:"
                " the user the node runs as)",
                key_file,
                stat.S_IMODE(mode),
            )
    if "*" in config.api.allowed_origins and not config.auth.enabled:
        log.warning(
            'api.allowed_origins is "*" and API keys are off: any web page the'
            " operator opens can read this node's answers"
        )


def _host_name(header: str) -> str:
    """The name of a ``Host`` header value, lower case, without port or brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        value = name
    return value.rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Names:
    """What a request's ``Host`` and client address must be on this node."""

    def __init__(self, config: Config) -> None:
        self.protected = not config.auth.enabled and not unauthenticated_network(config)
        exact = set(LOOPBACK_NAMES)
        exact.add(_host_name(bind_host(config.api.bind)))
        advertised = urlsplit(config.cluster.advertise_url).hostname
        if advertised:
            exact.add(advertised.lower())
        suffixes: list[str] = []
        self.any_host = False
        for entry in config.api.allowed_hosts:
            name = entry.strip().lower().rstrip(".")
            if name == "*":
                self.any_host = True
            elif name.startswith("."):
                suffixes.append(name)
            elif name:
                exact.add(_host_name(name))
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)
        self._hosts: dict[bytes, bool] = {}
        self._clients: dict[str, bool] = {}

    def host_allowed(self, header: bytes) -> bool:
        """Whether a ``Host`` header value names this node (remembered per value)."""
        found = self._hosts.get(header)
        if found is None:
            if len(self._hosts) >= _DECISIONS_SIZE:
                self._hosts = {}
            name = _host_name(header.decode("latin-1"))
            found = self._hosts[header] = (
                self.any_host
                or name in self.exact
                or _is_ip_literal(name)
                or any(name.endswith(suffix) for suffix in self.suffixes)
            )
        return found

    def client_allowed(self, address: str) -> bool:
        """Protected mode: only loopback clients (remembered per address)."""
        found = self._clients.get(address)
        if found is None:
            if len(self._clients) >= _DECISIONS_SIZE:
                self._clients = {}
            found = self._clients[address] = is_loopback(address)
        return found


def misdirected(host: bytes) -> ValidationError:
    shown = host.decode("latin-1")[:200]
    return ValidationError(
        "host",
        "not_this_node",
        f"Host {shown!r} is not a name of this node (an IP address, localhost, the host of"
        " api.bind or cluster.advertise_url); add it to [api] allowed_hosts if this node"
        " should answer it",
        code="misdirected_host",
        status=421,
    )


def refused_client(address: str) -> AuthorizationError:
    return AuthorizationError(
        f"API keys are off, so this node answers loopback clients only (protected mode);"
        f" {address[:64]} is not one: turn keys on ([auth] enabled = true) or set"
        " [api] allow_unauthenticated_network = true",
        code="protected_mode",
    )


__all__ = [
    "Names",
    "bind_host",
    "check_protected_mode",
    "is_loopback",
    "misdirected",
    "refused_client",
    "unauthenticated_network",
    "warn_about_defaults",
]
