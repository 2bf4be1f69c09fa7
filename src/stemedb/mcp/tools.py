"""The tools: name, description (written for a model), annotations, input and output
types, and what each does with an SDK client.

A tool gets a ``Session``: an ``AsyncClient`` (the caller's API key; its ``key`` signs
writes) and whether that key is custodial. Reads never sign. Writes are signed by the
client's key — the local key file over stdio, the API key's custodial key over HTTP —
and refused, before anything is sent, when there is none: never an unsigned record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
import msgspec

from stemedb.client import AssertionFields, AsyncClient, ObjectValue, RetryPolicy
from stemedb.errors import AuthorizationError
from stemedb.mcp import outputs
from stemedb.mcp.inputs import (
    AssertClaimInput,
    QueryInput,
    RetractSourceInput,
    SearchInput,
    SkepticInput,
    TraceInput,
    VoteInput,
)
from stemedb.model.signing import AgentKey


@dataclass(frozen=True)
class Session:
    """What one tool call works with."""

    client: AsyncClient
    custodial: bool  # ``client.key`` is the API key's custodial key (HTTP transport)
    no_signer_hint: str  # what to do when there is no key to sign with


Handler = Callable[[Session, Any], Awaitable[msgspec.Struct]]


@asynccontextmanager
async def client_session(
    url: str,
    *,
    key: AgentKey | None,
    api_key: str | None,
    custodial: bool,
    no_signer_hint: str,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Session]:
    """A ``Session`` over a fresh ``AsyncClient`` (closed on exit). The client does not
    retry: a 429 or a 503 goes back to the model at once, with its ``Retry-After``."""
    async with AsyncClient(
        url,
        key=key,
        api_key=api_key,
        timeout_seconds=timeout_seconds,
        retry=NO_RETRY,
        transport=transport,
    ) as client:
        yield Session(client=client, custodial=custodial, no_signer_hint=no_signer_hint)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input: type[msgspec.Struct]
    output: type[msgspec.Struct]
    read_only: bool
    destructive: bool
    idempotent: bool
    handler: Handler


def _signer(session: Session) -> AgentKey:
    key = session.client.key
    if key is None:
        raise AuthorizationError(
            f"this session has no key to sign with: {session.no_signer_hint}",
            code="no_signing_key",
        )
    return key


async def search(session: Session, args: SearchInput) -> outputs.SearchOutput:
    page = await session.client.search(args.q, limit=args.limit)
    return outputs.SearchOutput(
        hits=[
            outputs.SearchHit(
                subject=hit.subject,
                predicate=hit.predicate,
                matched_field=hit.matched_field,
                snippet=hit.snippet,
                claims=hit.claims,
                score=hit.score,
            )
            for hit in page.hits[: args.limit]
        ]
    )


async def query(session: Session, args: QueryInput) -> outputs.QueryOutput:
    filters: dict[str, Any] = {"limit": args.limit}
    for name in ("lens", "as_of", "valid_at"):
        value = getattr(args, name)
        if value is not None:
            filters[name] = value
    result = await session.client.query(args.subject, args.predicate, **filters)
    return outputs.query_output(result, args.subject, args.predicate, args.limit)


async def skeptic(session: Session, args: SkepticInput) -> outputs.SkepticOutput:
    result = await session.client.skeptic(args.subject, args.predicate)
    return outputs.skeptic_output(result, MAX_LISTED)


async def trace(session: Session, args: TraceInput) -> outputs.TraceOutput:
    return outputs.trace_output(await session.client.trace(args.id), MAX_LISTED)


async def assert_claim(session: Session, args: AssertClaimInput) -> outputs.WriteOutput:
    key = _signer(session)
    value: ObjectValue | str | float | bool = args.value
    if args.value_is_reference:
        value = ObjectValue(type="ref", value=str(args.value))
    fields: AssertionFields = {}
    if args.source_hash is not None:
        fields["source_hash"] = args.source_hash
    if args.source_class is not None:
        fields["source_class"] = args.source_class
    if args.parent is not None:
        fields["parent"] = args.parent
    if args.valid_from is not None:
        fields["valid_from"] = args.valid_from
    if args.valid_to is not None:
        fields["valid_to"] = args.valid_to
    result = await session.client.assert_(
        args.subject, args.predicate, value, args.confidence, **fields
    )
    return outputs.write_output(result, key.agent_id, custodial=session.custodial)


async def vote(session: Session, args: VoteInput) -> outputs.WriteOutput:
    key = _signer(session)
    result = await session.client.vote(args.claim_id, args.weight)
    return outputs.write_output(result, key.agent_id, custodial=session.custodial)


async def retract_source(session: Session, args: RetractSourceInput) -> outputs.RetractOutput:
    client = session.client
    impact = await client.retraction_impact(args.source_hash, limit=args.limit)
    signer = client.key.agent_id if client.key is not None else None
    if args.dry_run:
        return outputs.retract_output(impact, signer, None)
    key = _signer(session)
    result = await client.retract_source(args.source_hash, args.reason)
    written = outputs.write_output(result, key.agent_id, custodial=session.custodial)
    return outputs.retract_output(impact, key.agent_id, written)


MAX_LISTED: Final = 50
NO_RETRY: Final = RetryPolicy(max_retries=0)  # a 429 goes back to the model at once

SEARCH = ToolSpec(
    name="search",
    title="Search claims",
    description=(
        "Find what the database knows about, by words: subjects, predicates, text values"
        " and source titles. Use it first when you do not know the exact subject and"
        " predicate; then call `query` with a hit's subject and predicate. Hits are ranked"
        " (best first) and say how many claims each (subject, predicate) holds."
    ),
    input=SearchInput,
    output=outputs.SearchOutput,
    read_only=True,
    destructive=False,
    idempotent=True,
    handler=search,
)

QUERY = ToolSpec(
    name="query",
    title="Resolve a question through a lens",
    description=(
        "Answer one question - a (subject, predicate) pair - from claims that may"
        " contradict each other. A lens decides the winner: consensus (default; the value"
        " with the most weighted support), recency (newest), confidence, votes, authority"
        " (signer trust x evidence tier), layered (the most authoritative evidence tier"
        " wins) or skeptic. Returns the winner, the ranked claims with their weights, and"
        " conflict_score (0 agreed .. 1 evenly split). Cite claims by id. as_of reads the"
        " database as it stood at a past time; valid_at keeps claims true at that time."
    ),
    input=QueryInput,
    output=outputs.QueryOutput,
    read_only=True,
    destructive=False,
    idempotent=True,
    handler=query,
)

SKEPTIC = ToolSpec(
    name="skeptic",
    title="How contested is a question",
    description=(
        "For one (subject, predicate): every distinct value with its share of the"
        " support, and a status - unanimous, agreed or contested - with conflict_score."
        " Use it before relying on an answer, or to report a disagreement honestly"
        " instead of picking a winner."
    ),
    input=SkepticInput,
    output=outputs.SkepticOutput,
    read_only=True,
    destructive=False,
    idempotent=True,
    handler=skeptic,
)

TRACE = ToolSpec(
    name="trace",
    title="Provenance of a claim",
    description=(
        "Where one claim comes from: who signed it (and whether the server signed it"
        " with a custodial key, for which API key), its source and whether that source"
        " was retracted, the revision chain, what superseded it, votes, and how many"
        " audited queries used it. Takes the claim's id."
    ),
    input=TraceInput,
    output=outputs.TraceOutput,
    read_only=True,
    destructive=False,
    idempotent=True,
    handler=trace,
)

ASSERT_CLAIM = ToolSpec(
    name="assert_claim",
    title="Record a claim",
    description=(
        "Add a signed claim: subject, predicate, value, and your confidence (0..1)."
        " Claims are never overwritten or deleted - a contradicting claim is added beside"
        " the others and lenses resolve them at read time - so say what you believe and"
        " how sure you are. Cite evidence with source_hash when you have it; to revise"
        " one of your earlier claims, pass its id as parent. Writing the same content"
        " twice stores it once (status 'exists'). Returns the claim's id."
    ),
    input=AssertClaimInput,
    output=outputs.WriteOutput,
    read_only=False,
    destructive=False,
    idempotent=True,
    handler=assert_claim,
)

VOTE = ToolSpec(
    name="vote",
    title="Endorse a claim",
    description=(
        "Endorse an existing claim with a weight from 0 to 1 (your latest vote on a claim"
        " counts; 0 withdraws it). The votes lens ranks claims by their summed votes."
    ),
    input=VoteInput,
    output=outputs.WriteOutput,
    read_only=False,
    destructive=False,
    idempotent=True,
    handler=vote,
)

RETRACT_SOURCE = ToolSpec(
    name="retract_source",
    title="Retract a source of evidence",
    description=(
        "Mark a source of evidence as retracted (e.g. a withdrawn paper). Every claim"
        " citing it, and every claim revised from those, is then excluded from lens"
        " answers. By default this is a dry run that only lists the claims that would be"
        " excluded, and whether you may retract it (only an agent that registered the"
        " source may); call again with dry_run=false to retract for real. A retraction"
        " cannot be undone."
    ),
    input=RetractSourceInput,
    output=outputs.RetractOutput,
    read_only=False,
    destructive=True,
    idempotent=True,
    handler=retract_source,
)

# The search tool is served once the API has /v1/search (the SDK's ``search``).
TOOLS: Final[tuple[ToolSpec, ...]] = tuple(
    spec
    for spec in (SEARCH, QUERY, SKEPTIC, TRACE, ASSERT_CLAIM, VOTE, RETRACT_SOURCE)
    if spec is not SEARCH or hasattr(AsyncClient, "search")
)

__all__ = ["TOOLS", "Session", "ToolSpec", "client_session"]
