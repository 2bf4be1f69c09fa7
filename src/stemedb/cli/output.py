"""Plain-text tables and answers of the client commands: nothing is ever cut (ids are
printed whole, a wide table is wider than the terminal rather than shortened), no
colour, no terminal library; ``--json`` prints the server's answer instead."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from stemedb.client import ClaimView, QueryResult, SearchResponse, Suggestion


def line(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def print_json(answer: object) -> None:
    """An answer struct as indented JSON (what the server sent)."""
    line(msgspec.json.format(msgspec.json.encode(answer)).decode())


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``title``, then the rows under their column names, each column as wide as its
    widest cell."""
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line(title)
    for cells in (columns, ["-" * w for w in widths], *rows):
        line("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip())


def _claim_row(claim: ClaimView) -> list[str]:
    flags = [
        name
        for name, on in (("retracted", claim.retracted_source), ("superseded", claim.superseded))
        if on
    ]
    signer = claim.signatures[0].agent_id if claim.signatures else "-"
    return [
        str(claim.object.value),
        f"{claim.confidence:.2f}",
        claim.source_class,
        f"{claim.weight:.3f}",
        signer,
        claim.id,
        ",".join(flags),
    ]


def print_result(result: QueryResult) -> None:
    """A query answer: the resolution, then the claims or groups."""
    where = result.subject if result.subject is not None else f"{result.subject_prefix}*"
    title = f"{where} / {result.predicate or '*'} — lens {result.lens}"
    if result.resolution is not None:
        res = result.resolution
        winner = res.winner
        value = "-" if winner is None else f"{winner.object.value} ({winner.source_class})"
        line(title)
        line(
            f"winner: {value}  confidence {res.resolution_confidence:.3f}  conflict "
            f"{res.conflict_score:.3f}  candidates {res.candidates_count}"
            + (f"  status {res.status}" if res.status else "")
        )
    if result.results:
        rows = []
        for group in result.results:
            w = group.resolution.winner
            rows.append(
                [
                    group.subject,
                    group.predicate,
                    "-" if w is None else str(w.object.value),
                    f"{group.resolution.resolution_confidence:.3f}",
                    f"{group.resolution.conflict_score:.3f}",
                ]
            )
        group_columns = ("subject", "predicate", "winner", "confidence", "conflict")
        table(f"{title}: {len(result.results)} groups", group_columns, rows)
    if result.claims or not result.results:
        columns = ("value", "confidence", "source_class", "weight", "signed by", "id", "flags")
        table(f"{len(result.claims)} claims", columns, [_claim_row(c) for c in result.claims])
    for warning in result.source_warnings:
        line(f"excluded {warning.assertion_id}: {warning.kind} ({warning.reason})")
    if isinstance(result.suggestions, list):
        print_suggestions(result.suggestions)
    if result.next_cursor:
        line(f"more: --cursor {result.next_cursor}")


def print_suggestions(suggestions: list[Suggestion]) -> None:
    """ "Did you mean" lines, one per stored key (or subject)."""
    for s in suggestions:
        key = s.subject if s.predicate is None else f"{s.subject} {s.predicate}"
        line(f"did you mean: {key} ({s.claims} claims)")


def print_hits(result: SearchResponse) -> None:
    rows = [
        [
            f"{hit.score:.3f}",
            hit.subject,
            hit.predicate,
            hit.matched_field,
            str(hit.claims),
            hit.snippet,
        ]
        for hit in result.hits
    ]
    columns = ("score", "subject", "predicate", "matched", "claims", "snippet")
    table(f"{len(result.hits)} hits", columns, rows)
    if isinstance(result.suggestions, list):
        print_suggestions(result.suggestions)
    if result.next_cursor:
        line(f"more: --cursor {result.next_cursor}")
