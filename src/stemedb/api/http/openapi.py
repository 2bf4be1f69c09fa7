"""``/openapi.json`` (OpenAPI 3.1, generated) and ``/docs`` (a self-contained page).

The document is built from the routes' ``EndpointDoc`` and the msgspec types they
name, through ``msgspec.json.schema_components``: change a struct and the spec follows.
``/docs`` renders the same document as plain HTML; it loads nothing from the network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from stemedb.api.http.errors import JSON_MEDIA_TYPE
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route
from stemedb.wire import ErrorEnvelope

_OPERATION_CHARS: Final = re.compile(r"[^A-Za-z0-9]+")
REF_TEMPLATE: Final = "#/components/schemas/{name}"
OPENAPI_VERSION: Final = "3.1.0"
HEX64_SCHEMA: Final = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# Path parameters: content ids and public keys are 64 lowercase hex characters, query
# ids (the audit log) 32.
PATH_PARAM_SCHEMAS: Final = {
    "id": HEX64_SCHEMA,
    "hash": HEX64_SCHEMA,
    "agent_id": HEX64_SCHEMA,
    "query_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
# OpenAPI links (stateful testing, client generators): what a write's answer leads to.
WRITE_RESULT_LINKS: Final = {
    "/v1/assert": {
        "GetAssertion": ("get_v1_assertions_id", {"id": "$response.body#/id"}),
        "GetTrace": ("get_v1_trace_id", {"id": "$response.body#/id"}),
    },
}


def _schema_hook(t: Any) -> dict[str, Any]:
    if t is object:
        return {"description": "any JSON value"}
    raise NotImplementedError(t)


def _types_of(doc: EndpointDoc) -> list[Any]:
    found = [doc.body] if doc.body is not None else []
    found.extend(t for t in doc.responses.values() if t is not None)
    found.extend(p.type for p in doc.params)
    return found


def _response(
    status: int,
    schema: dict[str, Any] | None,
    media_type: str,
    links: dict[str, tuple[str, dict[str, str]]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if schema is not None:
        out["content"] = {media_type: {"schema": schema}}
    out["headers"] = {"X-Request-Id": {"schema": {"type": "string"}}}
    if links and status < 300:
        out["links"] = {
            name: {"operationId": op, "parameters": dict(params)}
            for name, (op, params) in links.items()
        }
    return out


def build_openapi(routes: Sequence[BaseRoute], version: str) -> dict[str, Any]:
    documented = [r for r in routes if isinstance(r, ApiRoute)]
    types: list[Any] = [ErrorEnvelope]
    for route in documented:
        for t in _types_of(route.doc):
            if t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(
        types, ref_template=REF_TEMPLATE, schema_hook=_schema_hook
    )
    schema_of = dict(zip(range(len(types)), schemas, strict=True))

    def schema(t: Any) -> dict[str, Any]:
        return schema_of[types.index(t)]

    paths: dict[str, dict[str, Any]] = {}
    for route in documented:
        doc = route.doc
        item = paths.setdefault(route.path, {})
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": dict(PATH_PARAM_SCHEMAS.get(name, {"type": "string"})),
            }
            for name in route.param_convertors
        ]
        parameters.extend(
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "description": p.description,
                "schema": schema(p.type),
            }
            for p in doc.params
        )
        responses: dict[str, Any] = {}
        for status, t in doc.responses.items():
            media = JSON_MEDIA_TYPE if status >= 300 else doc.media_type
            responses[str(status)] = _response(
                status, schema(t) if t else None, media, WRITE_RESULT_LINKS.get(route.path)
            )
        if not doc.responses:
            responses["200"] = _response(200, {"type": "string"}, doc.media_type)
        responses.setdefault(
            "default",
            {
                "description": "Error envelope",
                "content": {JSON_MEDIA_TYPE: {"schema": schema(ErrorEnvelope)}},
            },
        )
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            op: dict[str, Any] = {
                "summary": doc.summary,
                "tags": [doc.tag],
                "operationId": method.lower() + _OPERATION_CHARS.sub("_", route.path).rstrip("_"),
                "parameters": parameters,
                "responses": responses,
            }
            if doc.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": schema(doc.body)}},
                }
            item[method.lower()] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "StemeDB",
            "version": version,
            "description": "A probabilistic knowledge database: signed, content-addressed"
            " claims resolved at read time through lenses.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def docs_page(spec: dict[str, Any]) -> str:
    rows: list[str] = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            params = ", ".join(
                f"{html.escape(p['name'])}{'' if p['in'] == 'query' else ' (path)'}"
                for p in op["parameters"]
            )
            body = _model_names(op.get("requestBody", {}))
            answers = _model_names(
                {c: r for c, r in op.get("responses", {}).items() if c.startswith("2")}
            )
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(op['summary'])}</td><td>{params}</td>"
                f"<td>{body}</td><td>{answers}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>StemeDB API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>StemeDB API {html.escape(spec['info']['version'])}</h1>"
        "<p>The machine-readable contract is <a href='/openapi.json'>/openapi.json</a>"
        ' (OpenAPI 3.1). Every error answer is the envelope <code>{"error": {code, type,'
        ' message, details, retryable}, "request_id"}</code>.</p>'
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th>"
        "<th>request</th><th>answer</th></tr>"
        + "".join(rows)
        + "</table>"
        + _models_section(spec)
        + "</body></html>"
    )


def _model_names(tree: Any) -> str:
    """The schema names a part of the document refers to, linked to their section."""
    found = sorted(set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", str(tree))))
    return ", ".join(f"<a href='#{html.escape(n)}'>{html.escape(n)}</a>" for n in found)


def _models_section(spec: dict[str, Any]) -> str:
    """Each schema of the document: its fields, their types and whether required."""
    parts = ["<h2>Models</h2>"]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = "".join(
            f"<tr><td><code>{html.escape(field)}</code></td><td>"
            f"{html.escape(msgspec.json.encode(sub).decode())}</td>"
            f"<td>{'required' if field in required else ''}</td></tr>"
            for field, sub in schema.get("properties", {}).items()
        )
        parts.append(
            f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3><table>{fields}</table>"
        )
    return "".join(parts)


class IndexLinks(msgspec.Struct, kw_only=True):
    docs: str = "/docs"
    openapi: str = "/openapi.json"
    health: str = "/health"
    ready: str = "/ready"
    ui: str | msgspec.UnsetType = msgspec.UNSET  # the dashboard, when this server has one


class RootIndex(msgspec.Struct, kw_only=True):
    """``GET /``: what this server is and where to go next."""

    name: str
    version: str
    links: IndexLinks


def root_index(paths: Sequence[str], version: str) -> RootIndex:
    has_ui = any(p == "/ui" or p.startswith("/ui/") for p in paths)
    return RootIndex(
        name="StemeDB", version=version, links=IndexLinks(ui="/ui" if has_ui else msgspec.UNSET)
    )


def index_page(index: RootIndex) -> str:
    links = "".join(
        f"<li><a href='{html.escape(href)}'>{html.escape(href)}</a></li>"
        for href in msgspec.structs.asdict(index.links).values()
        if isinstance(href, str)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>StemeDB</title></head>"
        f"<body><h1>StemeDB {html.escape(index.version)}</h1><ul>{links}</ul></body></html>"
    )


def routes(get_routes: Any, version: str) -> list[ApiRoute]:
    """``get_routes`` returns the app's routes (the spec is built on first request)."""
    cache: dict[str, bytes | str] = {}

    def spec() -> dict[str, Any]:
        return build_openapi(get_routes(), version)

    async def get_openapi(request: Request) -> Response:
        if "json" not in cache:
            cache["json"] = msgspec.json.encode(spec())
        return Response(cache["json"], media_type=JSON_MEDIA_TYPE)

    async def get_docs(request: Request) -> Response:
        if "html" not in cache:
            cache["html"] = docs_page(spec())
        return HTMLResponse(cache["html"])

    async def get_index(request: Request) -> Response:
        if "index" not in cache:
            paths = [getattr(r, "path", "") for r in get_routes()]
            cache["index"] = msgspec.json.encode(root_index(paths, version))
        index = cache["index"]
        assert isinstance(index, bytes)
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(index_page(msgspec.json.decode(index, type=RootIndex)))
        return Response(index, media_type=JSON_MEDIA_TYPE)

    return [
        api_route(
            "/",
            get_index,
            ["GET"],
            EndpointDoc(
                summary="An index: links to /docs, /openapi.json, /health (and /ui).",
                tag="operations",
                responses={200: RootIndex},
            ),
            timeout_seconds=None,
        ),
        api_route(
            "/openapi.json",
            get_openapi,
            ["GET"],
            EndpointDoc(
                summary="This OpenAPI 3.1 document.",
                tag="operations",
                responses={200: dict[str, Any]},
            ),
            timeout_seconds=None,
        ),
        api_route(
            "/docs",
            get_docs,
            ["GET"],
            EndpointDoc(
                summary="Human-readable API reference (no external assets).",
                tag="operations",
                media_type="text/html",
            ),
            timeout_seconds=None,
        ),
    ]
