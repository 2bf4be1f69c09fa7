"""The Model Context Protocol face of StemeDB: seven tools for a model (search, query,
skeptic, trace, assert_claim, vote, retract_source), written once over the SDK
(``stemedb.client.AsyncClient``) and served two ways:

- Streamable HTTP at ``/mcp`` on the API's own port (``stemedb.api.mcp``): the SDK
  talks to the same app in process, with the caller's API key, so every tool call is a
  ``/v1`` request like any other (keys, roles, limits, quotas, audit); writes are
  signed with the custodial key bound to that API key;
- stdio (``stemedb mcp --url …``, ``stemedb.mcp.stdio``): the SDK talks HTTP to a
  running server and signs with the local key file.

Modules: ``inputs`` and ``outputs`` (the tools' JSON shapes, as msgspec structs),
``tools`` (names, descriptions, annotations and what each does), ``server`` (the MCP
SDK's low-level server over those tools). Reference: ``docs/reference/mcp.md``.
"""
