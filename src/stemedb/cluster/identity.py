"""Who this node is in the node registry: ``cluster.node_id`` and ``cluster.advertise_url``
with their defaults (``hostname:port`` of ``api.bind``; ``http(s)://`` + ``api.bind``)."""

from __future__ import annotations

import socket

from stemedb.config import Config


def node_id_of(config: Config) -> str:
    """``cluster.node_id``, else ``hostname:port`` of ``api.bind``."""
    if config.cluster.node_id:
        return config.cluster.node_id
    port = config.api.bind.rpartition(":")[2]
    return f"{socket.gethostname()}:{port}"


def advertise_url_of(config: Config) -> str:
    """``cluster.advertise_url``, else the bind address with the scheme TLS gives it."""
    if config.cluster.advertise_url:
        return config.cluster.advertise_url.rstrip("/")
    scheme = "https" if config.tls.cert_file else "http"
    return f"{scheme}://{config.api.bind}"


__all__ = ["advertise_url_of", "node_id_of"]
