"""Schemathesis over the server's own ``/openapi.json``, against a real server process.

Every operation is fuzzed (schema-valid and schema-violating inputs): no answer is a
5xx, every status code, content type, header and body is the one the document
promises (the error envelope included), and ``Allow`` on a 405 names every method of
the path. The stateful run follows the document's links (``POST /v1/assert`` →
``GET /v1/assertions/{id}``, ``GET /v1/trace/{id}``).

Not checked: "schema-valid request accepted" — the document cannot express signatures
that verify, clock skew or cross-field rules, so most generated writes are rightly a
400/401/422; and "schema-violating request rejected" for ``POST /v1/assert/batch``,
whose items are validated one by one and fail alone inside a 207 (API.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from api_server import ServerProcess
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from stemedb.api.app import create_app
from stemedb.api.http.openapi import build_openapi
from stemedb.config import Config

MAX_EXAMPLES = 30
STATEFUL_STEPS = 10
STATEFUL_EXAMPLES = 15
REQUEST_TIMEOUT_SECONDS = 10.0
CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]
# Items of a batch fail alone, inside a 207 (module docstring).
PER_ITEM_VALIDATION = frozenset({"POST /v1/assert/batch"})
# An endless SSE stream: its framing is tested in test_api_feed.py.
SKIPPED_PATHS = ("/v1/feed/stream",)


def _documented_operations() -> list[tuple[str, bool]]:
    """(label, takes input) of every operation of the document the app generates."""
    spec = build_openapi(create_app(Config()).router.routes, "test")
    out = []
    for path, item in spec["paths"].items():
        if path in SKIPPED_PATHS:
            continue
        for method, op in item.items():
            out.append((f"{method.upper()} {path}", bool(op["parameters"]) or "requestBody" in op))
    return out


OPERATIONS = _documented_operations()
# Schema-violating input needs an input to violate.
CASES = [(label, GenerationMode.POSITIVE) for label, _ in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label, takes_input in OPERATIONS if takes_input
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: fuzzed writes and long-polls stay out of the other tests'
    server, and a long-poll waits at most 50 ms."""
    base: Path = tmp_path_factory.mktemp("stemedb-fuzz")
    proc = ServerProcess(
        base / "data", base / "server.log", STEMEDB_API_FEED_MAX_WAIT_SECONDS="0.05"
    )
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> Any:
    """The document as the running server serves it."""
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


def checks_for(case: Case) -> list[Any]:
    if case.operation.label in PER_ITEM_VALIDATION:
        return [c for c in CHECKS if c is not negative_data_rejection]
    return CHECKS


def test_every_operation_of_the_document_is_fuzzed(api_schema: Any) -> None:
    served = {result.ok().label for result in api_schema.get_all_operations()}
    assert served - {label for label, _ in OPERATIONS} == {f"GET {p}" for p in SKIPPED_PATHS}


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_operation_answers_as_documented_and_never_5xx(
    api_schema: Any, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Case) -> None:
        case.call_and_validate(checks=checks_for(case), timeout=REQUEST_TIMEOUT_SECONDS)

    run()


def test_405_allow_names_every_method_of_a_path_split_over_routes(
    fuzz_server: ServerProcess,
) -> None:
    """Regression: ``GET`` and ``POST /v1/query`` are two routes; the 405 named only one."""
    for path, allowed in (("/v1/query", "GET, HEAD, POST"), ("/v1/sources", "GET, HEAD, POST")):
        response = httpx.request("DELETE", fuzz_server.url + path)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed


def test_openapi_document_describes_itself_as_an_object(api_schema: Any) -> None:
    """Regression: routes without declared responses were documented as a JSON string."""
    ok = api_schema.raw_schema["paths"]["/openapi.json"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["type"] == "object"


def test_openapi_links_lead_from_a_write_to_its_reads(api_schema: Any) -> None:
    responses = api_schema.raw_schema["paths"]["/v1/assert"]["post"]["responses"]
    links = responses["201"]["links"]
    assert links["GetAssertion"] == {
        "operationId": "get_v1_assertions_id",
        "parameters": {"id": "$response.body#/id"},
    }
    assert "GetTrace" in links


def test_stateful_sequences_follow_links_without_5xx_or_undocumented_answers(
    api_schema: Any,
) -> None:
    machine = api_schema.exclude(path=list(SKIPPED_PATHS)).as_state_machine()

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def validate_response(self, response, case, **kwargs):  # type: ignore[no-untyped-def]
            case.validate_response(response, checks=checks_for(case))

        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"timeout": REQUEST_TIMEOUT_SECONDS}

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
