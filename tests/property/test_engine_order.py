"""Property: what a query answers does not depend on the order the records were written
in (claims with distinct timestamps, so no answer rests on an LSN tie-break)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb.config import DefenceConfig
from stemedb.engine import Engine, EngineSettings
from stemedb.model.ids import record_id
from stemedb.model.records import SOURCE_CLASSES, Assertion, CoSignature, Vote
from stemedb.model.signing import AgentKey, cosign, sign_assertion, sign_vote
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.sys.faults import FakeClock

T0 = 1_700_000_000
SUBJECT, PREDICATE = "drugs/semaglutide", "gastroparesis_risk"
LENSES = ("recency", "confidence", "consensus", "votes", "authority", "layered", "skeptic")
KEYS = [AgentKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]

claim_specs = st.lists(
    st.tuples(
        st.sampled_from(["rare", "common", "uncommon"]),
        st.integers(0, 3),  # signer
        st.sampled_from([0.1, 0.35, 0.5, 0.8, 1.0]),
        st.sampled_from(SOURCE_CLASSES),
    ),
    min_size=1,
    max_size=7,
)

# Screening decides by arrival (the third near-duplicate is the one held): an order
# property of its own (tests/unit/engine/test_screening.py), not of the lenses.
NO_SCREENING = DefenceConfig(quarantine=False)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Assertion], list[Any], list[int], list[int]]:
    specs = draw(claim_specs)
    offsets = draw(
        st.lists(st.integers(1, 400 * 86400), min_size=len(specs), max_size=len(specs), unique=True)
    )
    claims = [
        sign_assertion(
            KEYS[signer],
            subject=SUBJECT,
            predicate=PREDICATE,
            object=value,
            confidence=confidence,
            source_class=source_class,
            timestamp=T0 - offset,
        )
        for (value, signer, confidence, source_class), offset in zip(specs, offsets, strict=True)
    ]
    extras: list[CoSignature | Vote] = []
    for n, (target, agent, weight) in enumerate(
        draw(
            st.lists(
                st.tuples(st.integers(0, len(claims) - 1), st.integers(0, 3), st.floats(0, 1)),
                max_size=4,
            )
        )
    ):
        aid = record_id(claims[target])
        if weight < 0.5:
            extras.append(cosign(KEYS[agent], aid, signed_at=T0))
        else:
            extras.append(
                sign_vote(KEYS[agent], assertion_id=aid, weight=weight, timestamp=T0 - 1 - n)
            )
    claim_order = draw(st.permutations(range(len(claims))))
    extra_order = draw(st.permutations(range(len(extras))))
    return claims, extras, claim_order, extra_order


def answers(claims: list[Assertion], extras: list[Any], directory: Path) -> list[Any]:
    settings = EngineSettings(group_commit_max_delay_us=0, defence=NO_SCREENING)
    with Engine.embedded(directory, settings, clock=FakeClock(float(T0))) as engine:
        for record in claims:
            engine.write(record)
        for record in extras:
            engine.write(record)
        service = QueryService(engine, refresh_views=False)
        try:
            out: list[Any] = []
            for lens in LENSES:
                q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens=lens))
                assert q.resolution is not None
                winner = q.resolution.winner
                out.append(
                    (
                        lens,
                        winner.id if winner else None,
                        round(q.resolution.conflict_score, 12),
                        round(q.resolution.resolution_confidence, 12),
                        q.resolution.status,
                        [
                            (c.id, round(c.weight, 12), sorted(s.agent_id for s in c.signatures))
                            for c in q.claims
                        ],
                    )
                )
            s = service.skeptic(SUBJECT, PREDICATE)
            out.append(
                [(c.value.value, round(c.support_share, 12), sorted(c.claim_ids)) for c in s.claims]
            )
            return out
        finally:
            service.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_query_answers_do_not_depend_on_write_order(
    scenario: tuple[list[Assertion], list[Any], list[int], list[int]],
) -> None:
    claims, extras, claim_order, extra_order = scenario
    with tempfile.TemporaryDirectory() as tmp:
        base = answers(claims, extras, Path(tmp) / "a")
        shuffled = answers(
            [claims[i] for i in claim_order], [extras[i] for i in extra_order], Path(tmp) / "b"
        )
        batched = answers_batched(claims, extras, claim_order, Path(tmp) / "c")
    assert shuffled == base
    assert batched == base


def answers_batched(
    claims: list[Assertion], extras: list[Any], order: list[int], directory: Path
) -> list[Any]:
    """The same records in one group commit (claims first, each batch in another order)."""
    settings = EngineSettings(group_commit_max_delay_us=0, defence=NO_SCREENING)
    with Engine.embedded(directory, settings, clock=FakeClock(float(T0))) as engine:
        engine.write_many([claims[i] for i in reversed(order)])
        engine.write_many(list(reversed(extras)))
    return answers([], [], directory)
