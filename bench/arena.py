"""The adversarial arena (issue 17, item 5; docs/design/defence.md).

Seeded, reproducible populations write through a real engine (``Engine.embedded``: the
full write path — validation, Ed25519 verification, group commit, WAL, SQLite, the
screening step — on a fake clock so that simulated days pass in seconds) and every lens
is asked every question. Honest agents are noisy and mostly right, cite sources of mixed
tiers, earn trust through gold-standard checks, sometimes restate a claim, sometimes
are very sure; a cohort of honest newcomers joins late. Each attack is added to the
same honest population on half of the questions:

- ``spam``: one fresh key repeats the wrong value in many spellings, confidence 1.0;
- ``sybil``: a swarm of fresh keys (each used on at most two questions) asserts one
  wrong value;
- ``vote_ring``: two fresh authors assert the wrong value and a ring of fresh keys
  votes it up (weight 1.0);
- ``slow_poisoner``: one agent answers honestly and earns trust (accurate outcomes),
  then asserts wrong values with confidence 0.95;
- ``source_poisoning``: three agents cite one regulatory-tier source for the wrong
  value; its publisher later retracts it (the invalidation cascade).

For each attack, lens and defences setting (``[defence] quarantine`` off/on) it reports truth
recovery on the attacked questions (the lens's winning value is the ground truth; for
the skeptic, which names no winner, the lie is not presented as settled: the top share
is the truth or the question is flagged ``contested``) and, with defences on, the
honest false-quarantine rate (quarantined honest writes / honest writes). Prints one
JSON document; ``--markdown`` prints the table of docs/design/defence.md instead.

    .venv/bin/python bench/arena.py --seed 17 --markdown
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stemedb.config import DefenceConfig
from stemedb.engine import Engine, EngineSettings
from stemedb.lens import LENS_NAMES
from stemedb.model.kinds import AnyRecord
from stemedb.model.records import ObjectValue, TrustOutcome
from stemedb.model.signing import (
    AgentKey,
    sign_assertion,
    sign_retraction,
    sign_source,
    sign_vote,
)
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.store.claim_keys import value_key
from stemedb.sys.faults import FakeClock

ATTACKS: Final = ("none", "spam", "sybil", "vote_ring", "slow_poisoner", "source_poisoning")
T0: Final = 1_760_000_000
DAY: Final = 86_400
VALUES: Final = 4  # candidate values per question
TIERS: Final = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")
TIER_MIX: Final = (0.05, 0.15, 0.2, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class Size:
    questions: int = 60
    honest: int = 30
    newcomers: int = 8
    answer_share: float = 0.5
    spam_copies: int = 20
    sybils_per_question: int = 8
    ring_voters: int = 10


SMALL: Final = Size(
    questions=16, honest=14, newcomers=5, spam_copies=8, sybils_per_question=6, ring_voters=6
)


@dataclass(order=True)
class Event:
    at: int
    seq: int
    record: Any = field(compare=False)
    honest: bool = field(compare=False, default=False)


class Population:
    """Every record of one run, in time order, and what is true."""

    def __init__(self, seed: int, attack: str, size: Size) -> None:
        self.rng = random.Random(f"{seed}:{attack}")
        self.size = size
        self.attack = attack
        self.events: list[Event] = []
        self.truth = {q: self.rng.randrange(VALUES) for q in range(size.questions)}
        self.attacked = sorted(self.rng.sample(range(size.questions), size.questions // 2))
        self._keys = 0
        self._honest()
        if attack != "none":
            getattr(self, f"_{attack}")()
        self.events.sort()

    # -- helpers -----------------------------------------------------------------------

    def key(self) -> AgentKey:
        self._keys += 1
        seed = hashlib.sha256(f"arena:{self.attack}:{self._keys}".encode()).digest()
        return AgentKey.from_seed(seed)

    def add(self, at: int, record: AnyRecord, *, honest: bool = False) -> None:
        self.events.append(Event(at, len(self.events), record, honest))

    def claim(
        self,
        key: AgentKey,
        q: int,
        value: int,
        at: int,
        confidence: float,
        *,
        spelling: str | None = None,
        source_class: str | None = None,
        source_hash: str | None = None,
        honest: bool = False,
    ) -> Any:
        record = sign_assertion(
            key,
            subject=f"arena/q{q:03d}",
            predicate="answer",
            object=spelling or f"value {value}",
            confidence=round(confidence, 3),
            timestamp=at,
            source_class=source_class,  # type: ignore[arg-type]
            source_hash=source_hash,
        )
        self.add(at, record, honest=honest)
        return record

    def wrong(self, q: int) -> int:
        return (self.truth[q] + 1 + q % (VALUES - 1)) % VALUES

    def tier(self) -> str:
        return self.rng.choices(TIERS, TIER_MIX)[0]

    # -- honest agents -----------------------------------------------------------------

    def _honest_answer(self, key: AgentKey, accuracy: float, q: int, at: int) -> None:
        rng = self.rng
        right = rng.random() < accuracy
        value = (
            self.truth[q] if right else rng.choice([v for v in range(VALUES) if v != self.truth[q]])
        )
        if rng.random() < 0.03:  # very sure experts
            confidence = rng.uniform(0.95, 1.0)
        elif right:
            confidence = rng.uniform(0.6, 0.92)
        else:
            confidence = rng.uniform(0.5, 0.85)
        record = self.claim(key, q, value, at, confidence, source_class=self.tier(), honest=True)
        if rng.random() < 0.5:  # agents endorse what they said
            self.add(
                at + 1,
                sign_vote(
                    key, assertion_id=_id(record), weight=round(confidence, 3), timestamp=at + 1
                ),
                honest=True,
            )
        if rng.random() < 0.1:  # a restatement later, same value, other confidence
            self.claim(
                key,
                q,
                value,
                at + rng.randrange(600, 3 * DAY),
                min(0.94, confidence + 0.02),
                honest=True,
            )

    def _honest(self) -> None:
        size, rng = self.size, self.rng
        for _ in range(size.honest):
            key = self.key()
            accuracy = rng.uniform(0.65, 0.9)
            for check in range(5):  # gold-standard checks early on
                self.add(
                    T0 + check * 60,
                    TrustOutcome(
                        agent_id=key.agent_id,
                        accurate=rng.random() < accuracy,
                        timestamp=T0 + check * 60,
                    ),
                )
            for q in range(size.questions):
                if rng.random() < size.answer_share:
                    self._honest_answer(key, accuracy, q, T0 + DAY + rng.randrange(0, DAY))
        for _ in range(size.newcomers):  # a cohort that joins late, no track record
            key = self.key()
            accuracy = rng.uniform(0.65, 0.9)
            for q in rng.sample(range(size.questions), max(1, size.questions // 4)):
                self._honest_answer(key, accuracy, q, T0 + 3 * DAY + rng.randrange(0, 3600))

    # -- attacks -----------------------------------------------------------------------

    def _spam(self) -> None:
        spammer = self.key()
        for q in self.attacked:
            at = T0 + 4 * DAY + q * 60
            for copy in range(self.size.spam_copies):
                spelling = _spelling(f"value {self.wrong(q)}", copy)
                self.claim(spammer, q, self.wrong(q), at + copy, 1.0, spelling=spelling)

    def _sybil(self) -> None:
        group: list[AgentKey] = []
        for n, q in enumerate(self.attacked):
            at = T0 + 4 * DAY + n * 120
            if n % 2 == 0:  # each swarm key is used on at most two questions
                group = [self.key() for _ in range(self.size.sybils_per_question)]
            for i, key in enumerate(group):
                self.claim(key, q, self.wrong(q), at + i, 0.9, source_class="expert")

    def _vote_ring(self) -> None:
        authors = [self.key(), self.key()]
        ring = [self.key() for _ in range(self.size.ring_voters)]
        for n, q in enumerate(self.attacked):
            at = T0 + 4 * DAY + n * 120
            for i, author in enumerate(authors):
                record = self.claim(author, q, self.wrong(q), at + i, 0.8, source_class="expert")
                for j, voter in enumerate(ring):
                    self.add(
                        at + 10 + j,
                        sign_vote(
                            voter, assertion_id=_id(record), weight=1.0, timestamp=at + 10 + j
                        ),
                    )

    def _slow_poisoner(self) -> None:
        poisoner = self.key()
        for check in range(10):
            self.add(
                T0 + 600 + check,
                TrustOutcome(agent_id=poisoner.agent_id, accurate=True, timestamp=T0 + 600 + check),
            )
        honest_qs = [q for q in range(self.size.questions) if q not in self.attacked]
        for q in honest_qs:
            self.claim(poisoner, q, self.truth[q], T0 + DAY + q * 60, 0.85, source_class="clinical")
        for q in self.attacked:
            self.claim(
                poisoner, q, self.wrong(q), T0 + 5 * DAY + q * 60, 0.95, source_class="clinical"
            )

    def _source_poisoning(self) -> None:
        publisher, liars = self.key(), [self.key() for _ in range(3)]
        at = T0 + 4 * DAY
        source = sign_source(
            publisher,
            uri="doi:10.0/arena-retracted",
            content="a fabricated study",
            title="A paper later retracted",
            source_class="regulatory",
            timestamp=at,
        )
        self.add(at, source)
        for n, q in enumerate(self.attacked):
            for i, liar in enumerate(liars):
                self.claim(
                    liar,
                    q,
                    self.wrong(q),
                    at + 10 + n * 10 + i,
                    0.9,
                    source_class="regulatory",
                    source_hash=source.source_hash,
                )
        self.add(
            at + 2 * DAY,
            sign_retraction(
                publisher,
                source_hash=source.source_hash,
                reason="data fabricated",
                timestamp=at + 2 * DAY,
            ),
        )


def _id(record: Any) -> str:
    from stemedb.model.ids import record_id

    return record_id(record)


def _spelling(text: str, copy: int) -> str:
    forms = (
        text,
        text.upper(),
        text.title(),
        f"{text}!",
        f"  {text}.",
        text.replace(" ", "  "),
        f"{text}?!",
        f"'{text}'",
    )
    return forms[copy % len(forms)] + ("" if copy < len(forms) else " " * (copy // len(forms)))


def _truth_key(truth: int) -> str:
    return value_key(ObjectValue("text", f"value {truth}"))


# -- running -------------------------------------------------------------------------


def _write(engine: Engine, clock: FakeClock, events: list[Event]) -> tuple[int, int]:
    """Write every event in time order; (honest writes, honest writes quarantined)."""
    honest_ids: set[str] = set()
    chunk: list[Event] = []

    def flush() -> None:
        clock.set(float(chunk[-1].at))
        results = engine.write_many([e.record for e in chunk])
        for e, result in zip(chunk, results, strict=True):
            if (
                e.honest
                and type(e.record).__name__ == "Assertion"
                and not isinstance(result, Exception)
            ):
                honest_ids.add(result.id)
        chunk.clear()

    for event in events:
        if chunk and (event.at - chunk[0].at > 60 or len(chunk) >= 256):
            flush()
        chunk.append(event)
    if chunk:
        flush()
    quarantined = {row.id for row in _all_quarantined(engine)}
    return len(honest_ids), len(honest_ids & quarantined)


def _all_quarantined(engine: Engine) -> Iterator[Any]:
    after = 0
    while True:
        rows = engine.store.quarantined(status=None, after=after, limit=1000)
        yield from rows
        if len(rows) < 1000:
            return
        after = rows[-1].lsn


def run_one(seed: int, attack: str, defended: bool, size: Size) -> dict[str, Any]:
    population = Population(seed, attack, size)
    data = Path(tempfile.mkdtemp(prefix="stemedb-arena-"))
    clock = FakeClock(float(T0))
    settings = EngineSettings(
        fsync=False, group_commit_max_delay_us=0, defence=DefenceConfig(quarantine=defended)
    )
    engine = Engine.embedded(data, settings, clock=clock)
    service = QueryService(engine)
    try:
        honest, false_quarantined = _write(engine, clock, population.events)
        clock.set(float(population.events[-1].at + 3600))
        questions = population.attacked if attack != "none" else list(range(size.questions))
        recovery: dict[str, float] = {}
        for lens in LENS_NAMES:
            right = 0
            for q in questions:
                subject = f"arena/q{q:03d}"
                params = QueryParams(subject=subject, predicate="answer", lens=lens)
                res = service.resolve_key(
                    subject, "answer", params, lens, engine.applied_lsn, clock.time()
                ).resolution
                truth = _truth_key(population.truth[q])
                if lens == "skeptic":
                    top = res.groups[0].value_key if res.groups else None
                    right += int(top == truth or res.status == "contested")
                else:
                    right += int(res.winner_value_key == truth)
            recovery[lens] = round(right / len(questions), 3)
        return {
            "attack": attack,
            "defences": "on" if defended else "off",
            "recovery": recovery,
            "honest_writes": honest,
            "honest_quarantined": false_quarantined,
            "honest_false_quarantine_rate": round(false_quarantined / honest, 4) if honest else 0.0,
            "records": len(population.events),
        }
    finally:
        service.close()
        engine.close()
        shutil.rmtree(data, ignore_errors=True)


def run_arena(seed: int, size: Size, attacks: tuple[str, ...] = ATTACKS) -> list[dict[str, Any]]:
    return [
        run_one(seed, attack, defended, size) for attack in attacks for defended in (False, True)
    ]


def markdown(
    rows: list[dict[str, Any]], seed: int, machine: dict[str, float], seconds: float
) -> str:
    lenses = list(LENS_NAMES)
    lines = [
        f"Seed {seed}; machine: {json.dumps(machine)}; {seconds:.0f} s.",
        "",
        "| attack | defences | " + " | ".join(lenses) + " | honest false quarantine |",
        "|---|---|" + "---|" * len(lenses) + "---|",
    ]
    for row in rows:
        cells = [f"{row['recovery'][lens]:.2f}" for lens in lenses]
        held, honest = row["honest_quarantined"], row["honest_writes"]
        rate = f"{row['honest_false_quarantine_rate'] * 100:.2f} % ({held}/{honest})"
        lines.append(
            f"| {row['attack']} | {row['defences']} | " + " | ".join(cells) + f" | {rate} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--small", action="store_true", help="the test suite's population")
    parser.add_argument("--markdown", action="store_true", help="print the table of defence.md")
    args = parser.parse_args(argv)
    from http_load import machine_speed

    started = time.perf_counter()
    rows = run_arena(args.seed, SMALL if args.small else Size())
    seconds = time.perf_counter() - started
    machine = machine_speed()
    if args.markdown:
        print(markdown(rows, args.seed, machine, seconds))
    else:
        print(
            json.dumps(
                {
                    "bench": "arena",
                    "seed": args.seed,
                    "machine": machine,
                    "seconds": round(seconds, 1),
                    "runs": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
