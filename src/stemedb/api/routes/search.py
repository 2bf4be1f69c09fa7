"""Search and discovery routes: ``GET /v1/search``, ``GET /v1/subjects``,
``GET /v1/subjects/{subject}/predicates`` (API.md; ``query.search`` does the work)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.config import ApiConfig
from stemedb.query import search as search_api
from stemedb.wire import ErrorEnvelope, PredicateList, SearchResponse, SubjectList

PREDICATES_PATH: Final = "/v1/subjects/{subject}/predicates"
# A subject holds "/" (drugs/semaglutide): the route matches it with Starlette's path
# convertor, and is named by the template above in metrics, policies and OpenAPI.
_PREDICATES_PATTERN: Final = "/v1/subjects/{subject:path}/predicates"


async def get_search(request: Request) -> Response:
    state = state_of(request)
    qs = QueryString(request)
    q = qs.text("q") or ""
    mode = qs.text("mode") or "words"
    limit = qs.integer("limit", search_api.SEARCH_DEFAULT_LIMIT)
    cursor = qs.text("cursor")
    qs.finish()
    store = state.service.store
    result = await state.offload(search_api.search, store, q, mode, limit, cursor)
    return json_response(result)


async def get_subjects(request: Request) -> Response:
    state = state_of(request)
    qs = QueryString(request)
    prefix = qs.text("prefix") or ""
    limit = qs.integer("limit", search_api.LISTING_DEFAULT_LIMIT)
    cursor = qs.text("cursor")
    qs.finish()
    store = state.service.store
    result = await state.offload(search_api.subjects, store, prefix, limit, cursor)
    return json_response(result)


async def get_predicates(request: Request) -> Response:
    state = state_of(request)
    subject = str(request.path_params["subject"])
    qs = QueryString(request)
    limit = qs.integer("limit", search_api.LISTING_DEFAULT_LIMIT)
    cursor = qs.text("cursor")
    qs.finish()
    store = state.service.store
    result = await state.offload(search_api.predicates, store, subject, limit, cursor)
    return json_response(result)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    errors = {400: ErrorEnvelope, 503: ErrorEnvelope}
    cursor = Param("cursor", str, "next_cursor of the previous page")
    listing_limit = Param(
        "limit",
        int,
        f"page size, 1..{search_api.LISTING_MAX_LIMIT} (default"
        f" {search_api.LISTING_DEFAULT_LIMIT})",
    )
    predicates_route = api_route(
        _PREDICATES_PATTERN,
        get_predicates,
        ["GET"],
        EndpointDoc(
            summary="A subject's predicates, in byte order, with their stored assertions.",
            tag="discovery",
            params=(listing_limit, cursor),
            responses={200: PredicateList, **errors},
        ),
        timeout_seconds=timeout,
    )
    predicates_route.path = PREDICATES_PATH  # matching uses the compiled pattern
    return [
        api_route(
            "/v1/search",
            get_search,
            ["GET"],
            EndpointDoc(
                summary="Full-text search over subjects, predicates, text values and cited"
                " sources, ranked (BM25); suggestions when nothing matched.",
                tag="discovery",
                params=(
                    Param("q", str, "words to find (all required)", required=True),
                    Param("mode", str, "words (default) or fts (the FTS5 query language)"),
                    Param(
                        "limit",
                        int,
                        f"hits per page, 1..{search_api.SEARCH_MAX_LIMIT} (default"
                        f" {search_api.SEARCH_DEFAULT_LIMIT})",
                    ),
                    cursor,
                ),
                responses={200: SearchResponse, **errors},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/subjects",
            get_subjects,
            ["GET"],
            EndpointDoc(
                summary="Subjects (optionally under a byte prefix) with their predicates and"
                " stored assertions, in byte order.",
                tag="discovery",
                params=(Param("prefix", str, "subject byte prefix"), listing_limit, cursor),
                responses={200: SubjectList, **errors},
            ),
            timeout_seconds=timeout,
        ),
        predicates_route,
    ]
