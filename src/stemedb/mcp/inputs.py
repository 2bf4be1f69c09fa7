"""What each tool takes: msgspec structs, whose JSON Schema is the tool's input schema.

Unknown arguments are refused (a model that misspells ``predicate`` hears about it),
and every constraint (ranges, enums) is in the schema the model sees.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 50

Lens = Literal["recency", "confidence", "consensus", "votes", "authority", "layered", "skeptic"]
SourceClass = Literal["regulatory", "clinical", "observational", "expert", "community", "anecdotal"]
Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Limit = Annotated[
    int,
    msgspec.Meta(ge=1, le=MAX_LIMIT, description=f"at most this many items (max {MAX_LIMIT})"),
]
Subject = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=512,
        description="what the claim is about, e.g. 'drugs/semaglutide'",
    ),
]
Predicate = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=256,
        description="which property of the subject, e.g. 'gastroparesis_risk'",
    ),
]
UnixSeconds = Annotated[float, msgspec.Meta(ge=0, description="a time, in Unix seconds")]


class _Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SearchInput(_Input):
    q: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=512,
            description="words to look for in subjects, predicates, text values and source titles",
        ),
    ]
    limit: Limit = DEFAULT_LIMIT


class QueryInput(_Input):
    subject: Subject
    predicate: Predicate
    lens: Annotated[
        Lens | None,
        msgspec.Meta(
            description="how to pick the winner among contradicting claims; default:"
            " the server's (consensus)"
        ),
    ] = None
    as_of: Annotated[
        UnixSeconds | None,
        msgspec.Meta(description="answer as the database stood at this time (Unix seconds)"),
    ] = None
    valid_at: Annotated[
        UnixSeconds | None,
        msgspec.Meta(description="only claims that hold in the world at this time"),
    ] = None
    limit: Limit = DEFAULT_LIMIT


class SkepticInput(_Input):
    subject: Subject
    predicate: Predicate


class TraceInput(_Input):
    id: Annotated[Hex64, msgspec.Meta(description="the claim's id (64 hex characters)")]


class AssertClaimInput(_Input):
    subject: Subject
    predicate: Predicate
    value: Annotated[
        str | float | bool,
        msgspec.Meta(description="the claimed value: a string, a number or a boolean"),
    ]
    confidence: Annotated[
        float, msgspec.Meta(ge=0.0, le=1.0, description="how sure, from 0.0 to 1.0")
    ]
    value_is_reference: Annotated[
        bool,
        msgspec.Meta(description="true: the string value names another subject (a reference)"),
    ] = False
    source_hash: Annotated[
        Hex64 | None,
        msgspec.Meta(description="sha256 (hex) of the evidence, e.g. a registered source"),
    ] = None
    source_class: Annotated[
        SourceClass | None,
        msgspec.Meta(
            description="the kind of evidence; default: the registered source's, else expert"
        ),
    ] = None
    parent: Annotated[
        Hex64 | None, msgspec.Meta(description="id of the claim this one revises")
    ] = None
    valid_from: (
        Annotated[int, msgspec.Meta(ge=0, description="holds in the world from (Unix seconds)")]
        | None
    ) = None
    valid_to: (
        Annotated[int, msgspec.Meta(ge=0, description="holds in the world until (Unix seconds)")]
        | None
    ) = None


class VoteInput(_Input):
    claim_id: Annotated[Hex64, msgspec.Meta(description="the id of the claim to endorse")]
    weight: Annotated[
        float,
        msgspec.Meta(ge=0.0, le=1.0, description="how strongly, 0.0 (withdraw) to 1.0"),
    ] = 1.0


class RetractSourceInput(_Input):
    source_hash: Annotated[Hex64, msgspec.Meta(description="the source to retract")]
    reason: Annotated[
        str, msgspec.Meta(min_length=1, max_length=4096, description="why it is retracted")
    ]
    dry_run: Annotated[
        bool,
        msgspec.Meta(
            description="true (the default): only report which claims would be excluded;"
            " false: retract for real"
        ),
    ] = True
    limit: Limit = DEFAULT_LIMIT


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AssertClaimInput",
    "Lens",
    "QueryInput",
    "RetractSourceInput",
    "SearchInput",
    "SkepticInput",
    "TraceInput",
    "VoteInput",
]
