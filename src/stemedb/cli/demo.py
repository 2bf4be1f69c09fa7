"""``stemedb demo``: a small, realistic, signed data set that disagrees with itself.

The question: how common is gastroparesis on semaglutide? A regulator's label, a
clinical trial, observational studies, clinicians and patient communities disagree;
the labelling epoch changes; an observational preprint is retracted, which takes down
the claim citing it and the claim derived from that one (the invalidation cascade).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Final

from stemedb.model.ids import assertion_id, record_id
from stemedb.model.kinds import AnyRecord
from stemedb.model.records import Assertion, SourceClass
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_assertion,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_vote,
)

SUBJECT: Final = "drugs/semaglutide"
PREDICATE: Final = "gastroparesis_risk"
DAY: Final = 86400
# A fixed "now" for the data set, so that loading the demo twice is idempotent.
DEMO_TIME: Final = 1_793_000_000

# Fixed seeds: the demo is the same everywhere (the agents are demo identities only).
AGENTS: Final = {
    "regulator": "01" * 32,
    "trial": "02" * 32,
    "epidemiologist": "03" * 32,
    "registry": "04" * 32,
    "clinician": "05" * 32,
    "forum": "06" * 32,
    "patient_a": "07" * 32,
    "patient_b": "08" * 32,
    "patient_c": "09" * 32,
}


def _source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def demo_records(now: int | None = None) -> Iterator[AnyRecord]:
    """Every record of the demo, in an order the engine accepts."""
    t = DEMO_TIME if now is None else now
    keys = {name: AgentKey.from_hex(seed) for name, seed in AGENTS.items()}

    sources: dict[str, tuple[str, str, SourceClass, str]] = {
        "label": (
            "fda://label/semaglutide/2024",
            "Prescribing information (2024 update)",
            "regulatory",
            "Gastroparesis reported rarely; see section 6.",
        ),
        "trial": (
            "doi:10.1056/demo-sustain",
            "SUSTAIN-style randomised trial",
            "clinical",
            "Delayed gastric emptying in <1% of participants.",
        ),
        "cohort": (
            "doi:10.1001/demo-cohort",
            "Retrospective insurance-claims cohort",
            "observational",
            "Hazard ratio 3.7 for gastroparesis versus comparator.",
        ),
        "preprint": (
            "doi:10.1101/demo-preprint",
            "Preprint: GLP-1 agonists and gastroparesis",
            "observational",
            "Gastroparesis in 1 of 10 users (n=212).",
        ),
    }
    hashes = {}
    for name, (uri, title, cls, text) in sources.items():
        hashes[name] = _source_hash(text)
        yield sign_source(
            keys["regulator" if name == "label" else "epidemiologist"],
            source_hash=hashes[name],
            uri=uri,
            title=title,
            source_class=cls,
            content=text,
            published_at=t - 200 * DAY,
            timestamp=t - 10,
        )

    old_epoch = sign_epoch(
        keys["regulator"],
        name="labelling-2017",
        description="Original label, no GI warning",
        timestamp=t - 10,
    )
    yield old_epoch
    new_epoch = sign_epoch(
        keys["regulator"],
        name="labelling-2024",
        description="Label update adds gastroparesis",
        kind="replace",
        supersedes=(record_id(old_epoch),),
        timestamp=t - 9,
    )

    def claim(
        who: str, value: str, confidence: float, *, timestamp: int | None = None, **extra: object
    ) -> Assertion:
        return sign_assertion(
            keys[who],
            subject=SUBJECT,
            predicate=PREDICATE,
            object=value,
            confidence=confidence,
            timestamp=t - 5 if timestamp is None else timestamp,
            **extra,  # type: ignore[arg-type]
        )

    old_label = claim(
        "regulator",
        "not_reported",
        0.9,
        source_class="regulatory",
        epoch=record_id(old_epoch),
        timestamp=t - 2000 * DAY,
    )
    yield old_label
    yield new_epoch
    label = claim(
        "regulator", "rare", 0.95, source_hash=hashes["label"], epoch=record_id(new_epoch)
    )
    trial = claim("trial", "rare", 0.85, source_hash=hashes["trial"], timestamp=t - 400 * DAY)
    cohort = claim(
        "epidemiologist", "elevated", 0.7, source_hash=hashes["cohort"], timestamp=t - 90 * DAY
    )
    preprint = claim(
        "epidemiologist", "common", 0.6, source_hash=hashes["preprint"], timestamp=t - 60 * DAY
    )
    yield from (label, trial, cohort, preprint)
    # A registry analyst builds on the preprint: its parent chain leads to a source
    # that will be retracted.
    derived = claim(
        "registry",
        "common",
        0.55,
        source_class="observational",
        parent=assertion_id(preprint),
        timestamp=t - 30 * DAY,
    )
    yield derived
    yield claim("clinician", "elevated", 0.6, source_class="expert", timestamp=t - 20 * DAY)
    # The newest claim is the forum's (the recency lens's winner): a minute after the label.
    for i, who in enumerate(("forum", "patient_a", "patient_b", "patient_c")):
        cls = "community" if who == "forum" else "anecdotal"
        when = t - 1 if who == "forum" else t - i * 3 * DAY
        yield claim(who, "common", 0.5 + 0.1 * (i % 3), source_class=cls, timestamp=when)
    # Every timestamp below is fixed too: a second load must create nothing new.
    yield cosign(keys["clinician"], assertion_id(trial), signed_at=t - 4)
    yield sign_vote(
        keys["clinician"], assertion_id=assertion_id(label), weight=0.9, timestamp=t - 3
    )
    yield sign_vote(keys["forum"], assertion_id=assertion_id(preprint), weight=1.0, timestamp=t - 3)
    # Three patients upvote the cohort study that matches what they lived: the votes lens
    # follows them, the evidence-weighing lenses do not.
    for who in ("patient_a", "patient_b", "patient_c"):
        yield sign_vote(keys[who], assertion_id=assertion_id(cohort), weight=1.0, timestamp=t - 3)
    yield sign_retraction(
        keys["epidemiologist"],
        source_hash=hashes["preprint"],
        reason="Data-processing error; authors withdrew the preprint",
        timestamp=t - 2,
    )
