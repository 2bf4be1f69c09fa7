"""Search and discovery over HTTP against a real server: the wire shape, ranking,
paging, bad input as the error envelope, listings, "did you mean", and the route
guard (auth) like every other read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_helpers import assert_envelope, now, post

from stemedb.model.signing import AgentKey, sign_assertion, sign_source

HIT_FIELDS = {"subject", "predicate", "matched_field", "snippet", "claims", "score"}


@dataclass
class Corpus:
    token: str  # a word no other test writes
    base: str  # f"search/{token}"


@pytest.fixture(scope="module")
def corpus(server: Any, alice: AgentKey, bob: AgentKey) -> Corpus:
    token = "t" + uuid.uuid4().hex[:10]
    base = f"search/{token}"
    t = now()
    with httpx.Client(base_url=server.url) as client:
        source = sign_source(
            alice,
            uri=f"https://example.org/{token}/paper",
            title=f"{token} tirzepatide trial",
            content=f"the {token} paper",
        )
        assert post(client, "/v1/sources", source).status_code == 201
        records = [
            sign_assertion(
                alice,
                subject=f"{base}/semaglutide",
                predicate="gastroparesis_risk",
                object="rare",
                confidence=0.8,
                timestamp=t,
            ),
            sign_assertion(
                bob,
                subject=f"{base}/semaglutide",
                predicate="gastroparesis_risk",
                object="common",
                confidence=0.6,
                timestamp=t,
            ),
            sign_assertion(
                alice,
                subject=f"{base}/semaglutide",
                predicate="weight_loss",
                object=f"{token} about fifteen percent",
                confidence=0.7,
                timestamp=t,
            ),
            sign_assertion(
                alice,
                subject=f"{base}/other",
                predicate="mentions",
                object="x",
                confidence=0.7,
                timestamp=t,
                source_hash=source.source_hash,
            ),
            sign_assertion(
                alice,
                subject=f"{base}/tirzepatide",
                predicate="dose",
                object=5.0,
                confidence=0.7,
                timestamp=t,
            ),
        ]
        records += [
            sign_assertion(
                bob,
                subject=f"{base}/many/{i:02}",
                predicate="p",
                object="v",
                confidence=0.5,
                timestamp=t,
            )
            for i in range(12)
        ]
        for record in records:
            response = post(client, "/v1/assert", record)
            assert response.status_code == 201, response.text
    return Corpus(token, base)


def test_a_hit_names_the_key_the_field_and_its_claims(client: httpx.Client, corpus: Corpus) -> None:
    response = client.get("/v1/search", params={"q": f"{corpus.token} gastroparesis"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"hits", "next_cursor"}
    (hit,) = body["hits"]
    assert set(hit) == HIT_FIELDS
    assert hit["subject"] == f"{corpus.base}/semaglutide"
    assert hit["predicate"] == "gastroparesis_risk"
    assert hit["matched_field"] == "subject"
    assert hit["claims"] == 2
    assert f"**{corpus.token}**" in hit["snippet"]
    assert body["next_cursor"] is None


def test_a_subject_match_outranks_a_source_title_match(
    client: httpx.Client, corpus: Corpus
) -> None:
    hits = client.get("/v1/search", params={"q": f"{corpus.token} tirzepatide"}).json()["hits"]
    assert [(h["subject"], h["matched_field"]) for h in hits] == [
        (f"{corpus.base}/tirzepatide", "subject"),
        (f"{corpus.base}/other", "source_title"),
    ]
    assert hits[0]["score"] > hits[1]["score"]
    value = client.get("/v1/search", params={"q": f"{corpus.token} fifteen"}).json()["hits"]
    assert [(h["predicate"], h["matched_field"]) for h in value] == [("weight_loss", "object")]


def test_hits_page_ten_at_a_time_to_the_end(client: httpx.Client, corpus: Corpus) -> None:
    first = client.get("/v1/search", params={"q": f"{corpus.token} many"}).json()
    assert len(first["hits"]) == 10
    assert first["next_cursor"]
    second = client.get(
        "/v1/search", params={"q": f"{corpus.token} many", "cursor": first["next_cursor"]}
    ).json()
    assert second["next_cursor"] is None
    subjects = [h["subject"] for h in first["hits"] + second["hits"]]
    assert sorted(subjects) == [f"{corpus.base}/many/{i:02}" for i in range(12)]


def test_the_fts_mode_reads_the_query_language(client: httpx.Client, corpus: Corpus) -> None:
    q = f"{corpus.token} AND (tirzepat* OR gastroparesis) NOT trial"
    hits = client.get("/v1/search", params={"q": q, "mode": "fts"}).json()["hits"]
    assert {h["subject"] for h in hits} == {
        f"{corpus.base}/tirzepatide",
        f"{corpus.base}/semaglutide",
    }


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "invalid_field"),
        ({"q": " "}, "invalid_field"),
        ({"q": "x", "mode": "regex"}, "invalid_field"),
        ({"q": "x AND", "mode": "fts"}, "bad_fts_query"),
        ({"q": '"unterminated', "mode": "fts"}, "bad_fts_query"),
        ({"q": "nosuchcolumn:x", "mode": "fts"}, "bad_fts_query"),
        ({"q": "x", "limit": "101"}, "limit_out_of_range"),
        ({"q": "x", "limit": "ten"}, "invalid_parameter"),
        ({"q": "x", "cursor": "garbage"}, "bad_cursor"),
        ({"q": "x", "lens": "recency"}, "unknown_parameter"),
    ],
)
def test_bad_search_input_is_the_400_envelope(
    client: httpx.Client, params: dict[str, str], code: str
) -> None:
    assert_envelope(client.get("/v1/search", params=params), 400, "ValidationError", code)


@pytest.mark.parametrize("q", ['"', "AND", "NEAR(", "a OR", "*", "((", "x:y", "^", "-x"])
def test_words_with_query_syntax_are_never_an_error(client: httpx.Client, q: str) -> None:
    response = client.get("/v1/search", params={"q": q})
    assert response.status_code == 200, response.text


def test_subjects_and_predicates_are_listed_with_counts(
    client: httpx.Client, corpus: Corpus
) -> None:
    page = client.get("/v1/subjects", params={"prefix": f"{corpus.base}/", "limit": 2}).json()
    assert set(page) == {"subjects", "next_cursor"}
    assert page["subjects"] == [
        {"subject": f"{corpus.base}/many/00", "predicates": 1, "claims": 1},
        {"subject": f"{corpus.base}/many/01", "predicates": 1, "claims": 1},
    ]
    listed: list[dict[str, Any]] = page["subjects"]
    cursor = page["next_cursor"]
    while cursor:
        page = client.get(
            "/v1/subjects", params={"prefix": f"{corpus.base}/", "limit": 5, "cursor": cursor}
        ).json()
        listed += page["subjects"]
        cursor = page["next_cursor"]
    assert len(listed) == 15
    assert {"subject": f"{corpus.base}/semaglutide", "predicates": 2, "claims": 3} in listed
    subject = f"{corpus.base}/semaglutide"
    response = client.get(f"/v1/subjects/{subject}/predicates")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "subject": subject,
        "predicates": [
            {"predicate": "gastroparesis_risk", "claims": 2},
            {"predicate": "weight_loss", "claims": 1},
        ],
        "next_cursor": None,
    }
    encoded = client.get(f"/v1/subjects/{subject.replace('/', '%2F')}/predicates").json()
    assert encoded["subject"] == subject
    unknown = client.get(f"/v1/subjects/{corpus.base}/nobody/predicates").json()
    assert unknown["predicates"] == []


def test_listing_bad_input_is_the_400_envelope(client: httpx.Client) -> None:
    assert_envelope(
        client.get("/v1/subjects", params={"limit": 0}),
        400,
        "ValidationError",
        "limit_out_of_range",
    )
    assert_envelope(
        client.get("/v1/subjects", params={"cursor": "x"}), 400, "ValidationError", "bad_cursor"
    )
    assert_envelope(client.get("/v1/subjects//predicates"), 400, "ValidationError")


def test_a_query_that_matched_nothing_suggests_stored_keys(
    client: httpx.Client, corpus: Corpus
) -> None:
    misspelt = client.get(
        "/v1/query",
        params={"subject": f"{corpus.base}/semaglutid", "predicate": "gastroparesis_risk"},
    )
    assert misspelt.status_code == 200, misspelt.text
    body = misspelt.json()
    assert body["claims"] == []
    assert body["resolution"]["winner"] is None
    assert body["suggestions"][0] == {
        "subject": f"{corpus.base}/semaglutide",
        "predicate": "gastroparesis_risk",
        "claims": 2,
    }
    assert len(body["suggestions"]) <= 5
    wrong_predicate = client.get(
        "/v1/query", params={"subject": f"{corpus.base}/semaglutide", "predicate": "weightloss"}
    ).json()
    assert wrong_predicate["suggestions"][0]["predicate"] == "weight_loss"
    found = client.get(
        "/v1/query",
        params={"subject": f"{corpus.base}/semaglutide", "predicate": "gastroparesis_risk"},
    ).json()
    assert "suggestions" not in found
    nothing = client.get("/v1/search", params={"q": f"{corpus.base}/semaglutdie"}).json()
    assert nothing["hits"] == []
    assert nothing["suggestions"][0]["subject"] == f"{corpus.base}/semaglutide"
