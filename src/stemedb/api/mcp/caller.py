"""Who called ``/mcp`` (kept in the request's scope for the tool calls' sessions)."""

from __future__ import annotations

from typing import Final

import msgspec

CALLER_KEY: Final = "stemedb.mcp.caller"


class Caller(msgspec.Struct, frozen=True):
    """The API key as sent, and its id once authenticated (None: none, or auth is off
    and the key is unknown)."""

    secret: str | None
    api_key_id: str | None


__all__ = ["CALLER_KEY", "Caller"]
