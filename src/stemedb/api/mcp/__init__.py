"""``/mcp``: the Model Context Protocol's Streamable HTTP transport on the API's port
(``endpoint``), and the sessions its tool calls run in (``sessions``)."""

from stemedb.api.mcp.endpoint import MCP_PATH, McpEndpoint

__all__ = ["MCP_PATH", "McpEndpoint"]
