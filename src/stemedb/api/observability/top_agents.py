"""The ``agent`` label of ``stemedb_http_requests_total``: the top N agents by volume.

Every request of an agent adds to its count; every ``REBALANCE_REQUESTS`` requests the
N busiest agents become the labelled ones, the counts are halved (recent volume
weighs more than old volume) and agents that fell out of the top N are returned so
the caller can drop their series (Prometheus sees a counter reset, which ``rate()``
handles). Until the first rebalance, agents are admitted as they arrive while fewer
than N are labelled, so a quiet server shows its agents at once. Other agents count as
``"_other"``, requests without an agent as ``""``. At most N agents carry a label at
any time, whatever the traffic.
"""

from __future__ import annotations

import heapq
from typing import Final

OTHER_AGENT: Final = "_other"
NO_AGENT: Final = ""
REBALANCE_REQUESTS: Final = 4096
TRACKED_PER_LABEL: Final = 10  # counts kept for at most 10 x N agents


class TopAgents:
    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._counts: dict[str, int] = {}
        self.labelled: set[str] = set()
        self._since_rebalance = 0

    def label(self, agent: str | None) -> tuple[str, list[str]]:
        """The label value for one request of ``agent``, and the agents whose series
        should be dropped now (usually none)."""
        dropped: list[str] = []
        self._since_rebalance += 1
        if self._since_rebalance >= REBALANCE_REQUESTS:
            dropped = self.rebalance()
        if not agent:
            return NO_AGENT, dropped
        self._counts[agent] = self._counts.get(agent, 0) + 1
        if agent in self.labelled:
            return agent, dropped
        if len(self.labelled) < self.limit:
            self.labelled.add(agent)
            return agent, dropped
        return OTHER_AGENT, dropped

    def rebalance(self) -> list[str]:
        """Label the N busiest agents; return the ones that lost their label."""
        self._since_rebalance = 0
        top = heapq.nlargest(self.limit, self._counts.items(), key=lambda item: item[1])
        keep = {agent for agent, _ in top}
        dropped = sorted(self.labelled - keep)
        self.labelled = keep
        tracked = heapq.nlargest(
            self.limit * TRACKED_PER_LABEL, self._counts.items(), key=lambda item: item[1]
        )
        self._counts = {agent: count // 2 for agent, count in tracked if count > 1}
        for agent in keep:  # a labelled agent keeps a count so it can be compared
            self._counts.setdefault(agent, 0)
        return dropped
