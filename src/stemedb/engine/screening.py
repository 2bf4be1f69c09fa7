"""The screening step of the write path (ARCHITECTURE §13; ADR 0023).

It runs in the commit step of the group-commit writer, after the signatures were
verified and the commit-time checks accepted a record, and before the batch is written:
for each accepted assertion it may decide to **quarantine** it, and that decision is a
``Quarantine`` record appended to the same batch right after it. So the decision is in
the WAL (nothing is dropped: the assertion is stored too), a rebuild from the WAL
reproduces it whatever the thresholds are then, and the quarantined assertion is never
visible to a lens or a view (``query.selection`` leaves it out unless
``include_quarantined``) until an admin approves it (``QuarantineReview``).

Three detectors, thresholds in ``[defence]`` (``config.DefenceConfig``):

- ``near_duplicate``: the agent already wrote ``near_duplicate_max_repeats`` or more
  near-identical claims (``engine.similarity``) on the same subject and predicate within
  ``near_duplicate_window_seconds`` (by the claims' timestamps);
- ``untrusted_confidence``: an agent with fewer than ``untrusted_min_outcomes`` trust
  outcomes (or a trust score under the initial 0.5) asserts a confidence of at least
  ``untrusted_confidence_min`` on a key where another value is *established*: held by at
  least ``established_min_agents`` distinct agents (not quarantined, not tainted) and by
  more agents than the new claim's value;
- ``fresh_key_burst``: ``fresh_key_burst_agents`` or more *fresh* keys (fewer than
  ``fresh_key_max_claims`` stored claims and no trust outcome) assert one (normalized)
  value on one key within ``fresh_key_burst_window_seconds``, unless that value is the
  one most backed there by agents that are not fresh: every claim of the burst is
  quarantined, earlier ones too.

The detectors' memory (recent claims per agent and key, fresh-key claims per key, the
agents' claim and outcome counts) lives in this object, fed by every accepted record;
an agent not yet seen is looked up once in the store. The memory is not durable: after
a restart the windows start empty (documented in docs/design/defence.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Final, Protocol

from stemedb.config import DefenceConfig
from stemedb.engine.similarity import SeenValue, normalized_key, normalized_value
from stemedb.model.records import Assertion, Quarantine, TrustOutcome
from stemedb.store.rows import CandidateRow, TrustRow
from stemedb.store.trust import TRUST_INITIAL

RECENT_KEYS_MAX: Final = 100_000  # (agent, subject, predicate) keys remembered
AGENTS_MAX: Final = 200_000  # agents whose counts are remembered


class ScreeningReads(Protocol):
    """What the detectors look up in the store (a ``Store`` answers all of it)."""

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool = False, limit: int = 0
    ) -> list[CandidateRow]: ...

    def trust_row(self, agent_id: str) -> TrustRow | None: ...

    def agent_counts(self, agent_id: str) -> dict[str, int]: ...


class _Agent:
    __slots__ = ("claims", "outcomes", "trust")

    def __init__(self, claims: int, outcomes: int, trust: float) -> None:
        self.claims = claims
        self.outcomes = outcomes
        self.trust = trust


class _Burst:
    """One fresh key's claim on a key: (timestamp, agent, value, assertion id)."""

    __slots__ = ("agent", "assertion_id", "quarantined", "timestamp", "value")

    def __init__(self, timestamp: int, agent: str, value: str, assertion_id: str) -> None:
        self.timestamp = timestamp
        self.agent = agent
        self.value = value
        self.assertion_id = assertion_id
        self.quarantined = False


class Screener:
    """Decides, record by record in commit order, which assertions to quarantine."""

    def __init__(self, config: DefenceConfig, reads: ScreeningReads) -> None:
        self._config = config
        self._reads = reads
        self._recent: OrderedDict[tuple[str, str, str], list[tuple[int, SeenValue]]] = OrderedDict()
        self._agents: dict[str, _Agent] = {}
        self._bursts: dict[tuple[str, str], list[_Burst]] = {}

    def screen(self, record_id: str, record: Assertion) -> list[Quarantine]:
        """The quarantine decisions this accepted assertion causes (usually none; a
        burst also quarantines its earlier claims)."""
        agent_id = record.signatures[0].agent_id
        agent = self._agent(agent_id)
        value = SeenValue(normalized_value(record.object))
        decisions: list[Quarantine] = []
        reason = self._near_duplicate(agent_id, record, value)
        if reason is None:
            reason = self._untrusted_confidence(agent, record, value.text)
        if reason is not None:
            decisions.append(self._decision(record_id, record.timestamp, *reason))
        fresh = agent.outcomes == 0 and agent.claims < self._config.fresh_key_max_claims
        agent.claims += 1
        if fresh:
            decisions.extend(self._fresh_burst(agent_id, record_id, record, value.text, decisions))
        return decisions

    def observe_outcome(self, outcome: TrustOutcome) -> None:
        """A trust outcome was accepted: the agent has one more outcome."""
        known = self._agents.get(outcome.agent_id)
        if known is not None:
            known.outcomes += 1
            row = self._reads.trust_row(outcome.agent_id)
            known.trust = row.score if row is not None else known.trust

    # -- detectors -----------------------------------------------------------------

    def _near_duplicate(
        self, agent_id: str, record: Assertion, value: SeenValue
    ) -> tuple[str, str] | None:
        config = self._config
        key = (agent_id, record.subject, record.predicate)
        seen = self._recent.pop(key, [])
        horizon = record.timestamp - config.near_duplicate_window_seconds
        seen = [(at, old) for at, old in seen if at >= horizon]
        repeats = sum(1 for _, old in seen if value.near(old, config.near_duplicate_similarity))
        seen.append((record.timestamp, value))
        self._recent[key] = seen
        if len(self._recent) > RECENT_KEYS_MAX:
            self._recent.popitem(last=False)
        if repeats < config.near_duplicate_max_repeats:
            return None
        return (
            "near_duplicate",
            f"{repeats} near-identical claims by this agent on this subject and predicate"
            f" within {config.near_duplicate_window_seconds} s",
        )

    def _untrusted_confidence(
        self, agent: _Agent, record: Assertion, value: str
    ) -> tuple[str, str] | None:
        config = self._config
        if record.confidence < config.untrusted_confidence_min:
            return None
        if agent.outcomes >= config.untrusted_min_outcomes and agent.trust >= TRUST_INITIAL:
            return None
        support = self._support(record.subject, record.predicate)
        own = len(support.get(value, ()))
        for other, agents in support.items():
            if (
                other != value
                and len(agents) >= config.established_min_agents
                and len(agents) > own
            ):
                return (
                    "untrusted_confidence",
                    f"confidence {record.confidence:g} from an agent with"
                    f" {agent.outcomes} trust outcomes against a value held by"
                    f" {len(agents)} agents",
                )
        return None

    def _fresh_burst(
        self,
        agent_id: str,
        record_id: str,
        record: Assertion,
        value: str,
        decided: Sequence[Quarantine],
    ) -> list[Quarantine]:
        config = self._config
        key = (record.subject, record.predicate)
        horizon = record.timestamp - config.fresh_key_burst_window_seconds
        burst = [b for b in self._bursts.get(key, []) if b.timestamp >= horizon]
        this = _Burst(record.timestamp, agent_id, value, record_id)
        this.quarantined = bool(decided)
        burst.append(this)
        self._bursts[key] = burst
        same = [b for b in burst if b.value == value]
        if len({b.agent for b in same}) < config.fresh_key_burst_agents:
            return []
        if self._established_value(record.subject, record.predicate, value):
            return []
        detail = (
            f"{len({b.agent for b in same})} fresh keys asserted this value on this subject"
            f" and predicate within {config.fresh_key_burst_window_seconds} s"
        )
        out = []
        for member in same:
            if not member.quarantined:
                member.quarantined = True
                out.append(
                    self._decision(member.assertion_id, record.timestamp, "fresh_key_burst", detail)
                )
        return out

    # -- lookups -------------------------------------------------------------------

    def _agent(self, agent_id: str) -> _Agent:
        known = self._agents.get(agent_id)
        if known is None:
            if len(self._agents) >= AGENTS_MAX:
                self._agents.clear()
            row = self._reads.trust_row(agent_id)
            claims = self._reads.agent_counts(agent_id).get("assertions", 0)
            known = _Agent(
                claims,
                row.outcomes if row is not None else 0,
                row.score if row is not None else TRUST_INITIAL,
            )
            self._agents[agent_id] = known
        return known

    def _support(self, subject: str, predicate: str) -> dict[str, set[str]]:
        """Normalized value -> the distinct agents that hold it on the key (claims that
        are not quarantined and cite no retracted source)."""
        support: dict[str, set[str]] = {}
        for row in self._reads.candidates(subject, predicate):
            if row.tainted_by is not None or _hidden(row):
                continue
            support.setdefault(normalized_key(row.value_key), set()).update(row.signers)
        return support

    def _established_value(self, subject: str, predicate: str, value: str) -> bool:
        """Whether agents that are not fresh keys back ``value`` on the key at least as
        much as any other value (a swarm agreeing with the established plurality is no
        attack on the outcome; one noisy established agent does not vouch for it)."""
        holders: dict[str, int] = {}
        for other, agents in self._support(subject, predicate).items():
            holders[other] = sum(1 for agent_id in agents if self._established(agent_id))
        backing = holders.get(value, 0)
        return backing > 0 and backing >= max(holders.values())

    def _established(self, agent_id: str) -> bool:
        agent = self._agent(agent_id)
        return agent.outcomes > 0 or agent.claims >= self._config.fresh_key_max_claims

    @staticmethod
    def _decision(assertion_id: str, timestamp: int, reason: str, detail: str) -> Quarantine:
        return Quarantine(
            assertion_id=assertion_id, reason=reason, detail=detail, timestamp=timestamp
        )


def _hidden(row: CandidateRow) -> bool:
    return row.quarantine_lsn is not None and row.released_lsn is None


def screener_for(config: DefenceConfig, reads: ScreeningReads) -> Screener | None:
    """The screening step of a writer: None while ``[defence] quarantine`` is off."""
    return Screener(config, reads) if config.quarantine else None
