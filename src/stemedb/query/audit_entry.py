"""What the audit log keeps of one query: the knobs that were set, the winner and the
contributions with their weights (``query.audit`` stores the ``AuditRecord``)."""

from __future__ import annotations

import msgspec

from stemedb.query.params import QueryParams
from stemedb.wire import Contribution, QueryResult


def audit_parameters(params: QueryParams) -> dict[str, object]:
    """The query's parameters without the unset knobs (None, False, 0 and empty lists,
    not "") and without the cursor."""
    parameters: dict[str, object] = {}
    for name, value in msgspec.structs.asdict(params).items():
        if value is None or (not value and type(value) is not str) or name == "cursor":
            continue
        parameters[name] = list(value) if type(value) is tuple else value
    return parameters


def query_contributions(result: QueryResult) -> tuple[str | None, list[Contribution]]:
    """(the winner when there is exactly one, the claims that contributed): every claim
    of a one-key answer, the winner of each group of a multi-key one."""
    if result.resolution is not None:
        winner = result.resolution.winner
        winners = [winner.id] if winner else []
        contributions = [Contribution(c.id, c.weight) for c in result.claims]
    else:
        winners = [g.resolution.winner.id for g in result.results or [] if g.resolution.winner]
        contributions = [
            Contribution(g.resolution.winner.id, g.resolution.winner.weight)
            for g in result.results or []
            if g.resolution.winner
        ]
    return (winners[0] if len(winners) == 1 else None), contributions
