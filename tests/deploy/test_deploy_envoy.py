"""deploy/envoy/envoy.yaml, checked for structure only: envoy is not packaged in Debian,
so no envoy binary validates or runs it here (the file and the docs say so).

What is checked: it is YAML; the listener terminates TLS; request ids are generated and
the client's are kept; the body limit equals ``api.max_body_bytes``; the cluster has an
active HTTP health check on ``/ready``; the SSE route has no timeout; every typed config
names a v3 type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from deploy_helpers import DEPLOY, OPERATIONS

from stemedb.config import ApiConfig

ENVOY = DEPLOY / "envoy" / "envoy.yaml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data = yaml.safe_load(ENVOY.read_text())
    assert isinstance(data, dict)
    return data


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (manager,) = chain["filters"]
    return dict(manager["typed_config"])


def test_tls_is_terminated_at_the_listener(config: dict[str, Any]) -> None:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("tls.v3.DownstreamTlsContext")
    (cert,) = tls["common_tls_context"]["tls_certificates"]
    assert cert["certificate_chain"]["filename"].endswith("fullchain.pem")
    assert cert["private_key"]["filename"].endswith("privkey.pem")


def test_request_ids_are_kept_or_generated(config: dict[str, Any]) -> None:
    manager = hcm(config)
    assert manager["generate_request_id"] is True
    assert manager["preserve_external_request_id"] is True
    assert manager["always_set_request_id_in_response"] is True


def test_body_limit_equals_api_max_body_bytes(config: dict[str, Any]) -> None:
    filters = {f["name"]: f for f in hcm(config)["http_filters"]}
    buffer = filters["envoy.filters.http.buffer"]["typed_config"]
    assert buffer["max_request_bytes"] == ApiConfig().max_body_bytes
    assert list(filters)[-1] == "envoy.filters.http.router"


def test_active_health_check_on_ready(config: dict[str, Any]) -> None:
    (cluster,) = config["static_resources"]["clusters"]
    (check,) = cluster["health_checks"]
    assert check["http_health_check"]["path"] == "/ready"
    assert check["unhealthy_threshold"] >= 1 and check["interval"].endswith("s")
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert len(endpoints) == 2


def test_feed_stream_has_no_route_timeout(config: dict[str, Any]) -> None:
    (host,) = hcm(config)["route_config"]["virtual_hosts"]
    stream = next(r for r in host["routes"] if r["match"].get("path") == "/v1/feed/stream")
    assert stream["route"]["timeout"] == "0s"
    assert host["routes"][-1]["match"] == {"prefix": "/"}  # the catch-all comes last


def test_every_typed_config_is_a_v3_type(config: dict[str, Any]) -> None:
    types = [node["@type"] for node in walk(config) if "@type" in node]
    assert types and all(t.startswith("type.googleapis.com/envoy.") and ".v3." in t for t in types)


def test_docs_say_envoy_was_not_run_here() -> None:
    assert "NOT TESTED WITH AN ENVOY BINARY" in ENVOY.read_text()
    assert "envoy is not packaged in Debian" in (OPERATIONS / "deployment.md").read_text()
