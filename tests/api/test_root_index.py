"""``GET /`` is a small index, and the OpenAPI document (and ``/docs``) carries the
request and answer models of every route."""

from __future__ import annotations

import httpx

# Writes that take no body: the route's path names everything.
NO_BODY = {("post", "/v1/admin/api-keys/{id}/disable")}


def test_the_root_answers_an_index_of_links(client: httpx.Client) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    index = answer.json()
    assert index["name"] == "StemeDB" and index["version"]
    links = index["links"]
    assert {links["docs"], links["openapi"], links["health"]} == {
        "/docs",
        "/openapi.json",
        "/health",
    }
    for href in links.values():
        assert client.get(href).status_code == 200, href
    page = client.get("/", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "href='/docs'" in page.text and "href='/openapi.json'" in page.text


def test_every_route_documents_its_request_and_answer_models(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    missing = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            if not any("schema" in m for r in ok.values() for m in r.get("content", {}).values()):
                missing.append((method, path, "answer"))
            writes = method in ("post", "put", "patch") and (method, path) not in NO_BODY
            if writes and "requestBody" not in op and not op.get("parameters"):
                missing.append((method, path, "request"))
    assert missing == []
    docs = client.get("/docs").text
    assert "<h2>Models</h2>" in docs and "<h3 id='Assertion'>" in docs
    assert "href='#WriteResult'" in docs
