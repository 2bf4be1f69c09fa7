"""The MCP SDK's low-level ``Server`` over the tools (``stemedb.mcp.tools``).

- ``tools/list``: each tool with its input and output JSON Schemas (generated from the
  msgspec structs, ``$defs`` inlined in the document so a client can resolve them),
  and the ``readOnlyHint``/``destructiveHint``/``idempotentHint`` annotations.
- ``tools/call``: the arguments are decoded strictly into the tool's input struct; the
  answer is the output struct as ``structuredContent`` plus the same JSON as text.
  A StemeDB error (a refused key, a validation error, a 429 …) is a tool result with
  ``isError`` and the error's type, code and message, so the model can read it.

``open_session`` gives each call its ``Session`` from the transport's request (the
HTTP request over Streamable HTTP, None over stdio).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import Any, Final

import mcp_types as types
import msgspec
from mcp.server import Server, ServerRequestContext

from stemedb import __version__
from stemedb.errors import StemeError
from stemedb.mcp.tools import TOOLS, Session, ToolSpec
from stemedb.model.validation import check_exact_integer

SERVER_NAME: Final = "stemedb"
INSTRUCTIONS: Final = (
    "StemeDB is a shared memory of claims, not facts: every claim is signed by an agent"
    " and contradicting claims coexist. Find questions with `search`, answer them with"
    " `query` (pick a lens) and `skeptic`, check provenance with `trace`, and cite claims"
    " by id. Add what you learn with `assert_claim` (with your confidence) and `vote`."
)

OpenSession = Callable[[Any], AbstractAsyncContextManager[Session]]


def json_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """``struct``'s JSON Schema as one self-contained object schema (``$defs`` inside)."""
    (root,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    name = root["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = dict(components.pop(name))
    if components:
        schema["$defs"] = components
    return schema


@cache
def tool_definitions() -> tuple[types.Tool, ...]:
    return tuple(
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=json_schema(spec.input),
            output_schema=json_schema(spec.output),
            annotations=types.ToolAnnotations(
                title=spec.title,
                read_only_hint=spec.read_only,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent,
                open_world_hint=False,
            ),
        )
        for spec in TOOLS
    )


_BY_NAME: Final[Mapping[str, ToolSpec]] = {spec.name: spec for spec in TOOLS}


def _error_result(kind: str, code: str, message: str, **extra: Any) -> types.CallToolResult:
    error = {"type": kind, "code": code, "message": message, **extra}
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps({"error": error}))], is_error=True
    )


def _stemedb_error(exc: StemeError) -> types.CallToolResult:
    extra: dict[str, Any] = {"status": exc.status, "retryable": exc.retryable}
    if exc.details:
        extra["details"] = exc.details
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        extra["retry_after_seconds"] = retry_after
    return _error_result(exc.type_name, exc.code, exc.message, **extra)


async def call_tool(spec: ToolSpec, session: Session, arguments: Any) -> types.CallToolResult:
    """One tool call: decode, run, encode; StemeDB errors become an error result."""
    try:
        args = msgspec.convert(arguments or {}, spec.input)
    except msgspec.ValidationError as exc:
        return _error_result("ValidationError", "invalid_arguments", str(exc))
    try:
        for name, value in (arguments or {}).items():  # before a float field rounds it
            check_exact_integer(value, name)
        answer = await spec.handler(session, args)
    except StemeError as exc:
        return _stemedb_error(exc)
    structured = msgspec.to_builtins(answer)
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(structured))],
        structured_content=structured,
    )


def build_server(open_session: OpenSession) -> Server[Any]:
    """A low-level MCP server with the tools; each call opens its ``Session``."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(tool_definitions()))

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = _BY_NAME.get(params.name)
        if spec is None:
            return _error_result("NotFoundError", "unknown_tool", f"no tool {params.name!r}")
        try:
            async with open_session(ctx.request) as session:
                return await call_tool(spec, session, params.arguments)
        except StemeError as exc:  # refused before the tool ran (e.g. no custodial key)
            return _stemedb_error(exc)

    def input_schema(name: str) -> Mapping[str, Any] | None:
        spec = _BY_NAME.get(name)
        return json_schema(spec.input) if spec is not None else None

    return Server(
        SERVER_NAME,
        version=__version__,
        title="StemeDB",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
    )


__all__ = ["INSTRUCTIONS", "SERVER_NAME", "build_server", "call_tool", "json_schema"]
