"""The HTTP API (API.md): a Starlette app with msgspec bodies, and its server."""

from stemedb.api.app import create_app, serve

__all__ = ["create_app", "serve"]
