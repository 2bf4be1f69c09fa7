"""Every lens over one realistic (subject, predicate), through the real store: the
winner must be the one its rule picks (ARCHITECTURE §6)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stemedb.engine import Engine, WriteResult
from stemedb.model.records import Assertion, TrustOutcome
from stemedb.model.signing import AgentKey, sign_vote
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService

T0 = 1_700_000_000
SUBJECT, PREDICATE = "drugs/semaglutide", "gastroparesis_risk"

Claim = Callable[..., Assertion]


@pytest.fixture
def ids(engine: Engine, claim: Claim, keys: list[AgentKey]) -> dict[str, str]:
    """A regulatory label, three experts agreeing, one confident outlier, a fresh
    anecdote; keys[2] has earned full trust; the crowd voted for D."""
    k, ex = keys, "expert"
    records = {
        "A": claim("rare", key=k[0], confidence=0.5, source_class="regulatory", timestamp=T0 - 500),
        "B": claim("common", key=k[1], confidence=0.8, source_class=ex, timestamp=T0 - 400),
        "C": claim("common", key=k[2], confidence=0.8, source_class=ex, timestamp=T0 - 300),
        "D": claim("common", key=k[3], confidence=0.7, source_class=ex, timestamp=T0 - 200),
        "E": claim("uncommon", key=k[4], confidence=0.95, source_class=ex, timestamp=T0 - 100),
        "F": claim(
            "very_rare", key=k[0], confidence=0.3, source_class="anecdotal", timestamp=T0 - 10
        ),
    }
    written = engine.write_many(list(records.values()))
    out = {}
    for name, result in zip(records, written, strict=True):
        assert isinstance(result, WriteResult)
        out[name] = result.id
    outcomes = [
        TrustOutcome(agent_id=k[2].agent_id, accurate=True, timestamp=T0 - 60 + i)
        for i in range(10)
    ]
    engine.write_many(outcomes)
    engine.write(sign_vote(k[1], assertion_id=out["D"], weight=1.0, timestamp=T0 - 5))
    return out


@pytest.mark.parametrize(
    ("lens", "winner", "value"),
    [
        ("recency", "F", "very_rare"),  # newest
        ("confidence", "E", "uncommon"),  # highest confidence x decay
        ("votes", "D", "common"),  # only voted claim
        ("authority", "C", "common"),  # confidence x trust(1.0) x tier weight
        ("layered", "A", "rare"),  # the regulatory tier decides
    ],
)
def test_lens_picks_the_winner_its_rule_names(
    service: QueryService, ids: dict[str, str], lens: str, winner: str, value: str
) -> None:
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens=lens))
    assert q.resolution is not None and q.resolution.winner is not None
    assert q.resolution.winner.id == ids[winner]
    assert q.resolution.winner.object.value == value
    assert q.resolution.candidates_count == 6
    assert q.claims[0].id == ids[winner]  # claims come in lens order
    assert sorted(c.id for c in q.claims) == sorted(ids.values())
    if lens == "layered":
        assert q.resolution.deciding_tier == 0


def test_consensus_lens_picks_the_heaviest_value_group(
    service: QueryService, ids: dict[str, str]
) -> None:
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))  # default lens
    assert q.lens == "consensus"
    assert q.resolution is not None and q.resolution.winner is not None
    assert q.resolution.winner.object.value == "common"
    assert q.resolution.winner.id in {ids["B"], ids["C"], ids["D"]}
    assert 0 < q.resolution.conflict_score < 1
    weights = {c.id: c.weight for c in q.claims}
    assert weights[ids["B"]] == pytest.approx(0.8 * 0.4, rel=1e-3)  # c x tier(expert)
    assert weights[ids["A"]] == pytest.approx(0.5 * 1.0)  # regulatory never decays


def test_authority_weight_uses_the_signer_trust(service: QueryService, ids: dict[str, str]) -> None:
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="authority"))
    weights = {c.id: c.weight for c in q.claims}
    assert weights[ids["C"]] == pytest.approx(0.8 * 1.0 * 0.4, rel=1e-3)
    assert weights[ids["B"]] == pytest.approx(0.8 * 0.5 * 0.4, rel=1e-3)


def test_skeptic_reports_every_value_with_shares_and_no_winner(
    service: QueryService, ids: dict[str, str]
) -> None:
    s = service.skeptic(SUBJECT, PREDICATE)
    assert s.status == "contested"
    assert s.claims[0].value.value == "common"
    assert {c.value.value for c in s.claims} == {"rare", "common", "uncommon", "very_rare"}
    assert sum(c.support_share for c in s.claims) == pytest.approx(1.0)
    common = s.claims[0]
    assert sorted(common.claim_ids) == sorted([ids["B"], ids["C"], ids["D"]])
    assert 0 < s.conflict_score < 1
    assert s.candidates_count == 6
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="skeptic"))
    assert q.resolution is not None and q.resolution.winner is None


def test_skeptic_of_a_unanimous_key_has_zero_conflict(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    engine.write_many([claim("yes", key=k, predicate="approved") for k in keys[:3]])
    s = service.skeptic(SUBJECT, "approved")
    assert s.status == "unanimous" and s.conflict_score == 0.0
    assert len(s.claims) == 1 and s.claims[0].support_share == pytest.approx(1.0)


def test_unknown_subject_resolves_to_no_winner(service: QueryService) -> None:
    q = service.query(QueryParams(subject="drugs/none", predicate=PREDICATE))
    assert q.resolution is not None
    assert q.resolution.winner is None and q.resolution.candidates_count == 0
    assert q.claims == []
