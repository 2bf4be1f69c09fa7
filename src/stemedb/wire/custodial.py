"""Custodial agent keys (``/v1/admin/custodial-keys``) and what a trace says of them.

A custodial key is an agent key whose private half the server keeps, bound to one API
key: what the holder of that API key writes through ``/mcp`` is signed with it
(``docs/reference/mcp.md``). The wire never carries the private half.
"""

from __future__ import annotations

import msgspec


class CreateCustodialKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    api_key_id: str


class CustodialKeyView(msgspec.Struct, kw_only=True):
    """One custodial key: its agent (the public key), the API key it signs for."""

    agent_id: str
    api_key_id: str
    api_key_name: str | None  # None once the API key itself is deleted
    created_at: float
    revoked_at: float | None
    usable: bool  # not revoked (the server still holds its private half)


class CustodialKeyList(msgspec.Struct, kw_only=True):
    keys: list[CustodialKeyView]


__all__ = ["CreateCustodialKeyBody", "CustodialKeyList", "CustodialKeyView"]
