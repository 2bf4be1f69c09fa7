"""The wire structs encode exactly the JSON the server sent before they had a home, and
decode it back into typed structs (records included); the copies of store rows and of
the assertion's fields stay in step with their originals."""

from __future__ import annotations

import msgspec
import pytest

from stemedb.model.kinds import TYPE_OF_KIND, AnyRecord, RecordKind
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    ObjectValue,
    Retraction,
    Signature,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)
from stemedb.store import rows
from stemedb.wire import (
    AssertionBody,
    EpochRow,
    FeedItem,
    FeedPage,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
    decode_feed_item,
    decode_feed_page,
)
from stemedb.wire.feed import FEED_KIND_NAMES, RECORD_TYPES

HEX = "ab" * 32
SIG = Signature(agent_id=HEX, signature="cd" * 64, signed_at=1_700_000_000)
ASSERTION = Assertion(
    subject="drugs/semaglutide",
    predicate="gastroparesis_risk",
    object=ObjectValue("number", 0.25),
    confidence=0.8,
    timestamp=1_700_000_000,
    signatures=(SIG,),
    source_hash=HEX,
    valid_to=1_800_000_000,
)
RECORDS: list[AnyRecord] = [
    ASSERTION,
    CoSignature(assertion_id=HEX, signature=SIG),
    Vote(assertion_id=HEX, weight=-0.5, timestamp=1, signature=SIG),
    Epoch(name="e", timestamp=1, signatures=(SIG,), supersedes=(HEX,)),
    Supersession(old=HEX, new="cd" * 32, reason="r", timestamp=1, signatures=(SIG,)),
    Source(source_hash=HEX, uri="fda://label/1", timestamp=1, signatures=(SIG,), title="t"),
    Retraction(source_hash=HEX, reason="withdrawn", timestamp=1, signatures=(SIG,)),
    TrustOutcome(agent_id=HEX, accurate=True, timestamp=1),
]


def _fields(cls: type[msgspec.Struct]) -> list[tuple[str, object, object]]:
    return [(f.name, f.type, f.default) for f in msgspec.structs.fields(cls)]


def test_assertion_body_has_the_assertions_fields_but_signatures_in_order() -> None:
    assert _fields(AssertionBody) == [f for f in _fields(Assertion) if f[0] != "signatures"]


def test_assertion_body_encodes_as_the_record_without_its_signatures() -> None:
    before = msgspec.to_builtins(ASSERTION)
    before.pop("signatures")
    assert msgspec.json.encode(AssertionBody.of(ASSERTION)) == msgspec.json.encode(before)


@pytest.mark.parametrize(
    ("store_row", "wire_row"),
    [
        (rows.SourceRow, SourceRow),
        (rows.EpochRow, EpochRow),
        (rows.SignatureRow, SignatureRow),
        (rows.VoteRow, VoteRow),
        (rows.SupersessionRow, SupersessionRow),
        (rows.TrustRow, TrustRow),
    ],
)
def test_store_rows_and_their_wire_structs_have_the_same_fields(
    store_row: type[msgspec.Struct], wire_row: type[msgspec.Struct]
) -> None:
    assert _fields(store_row) == _fields(wire_row)
    assert store_row.__name__ == wire_row.__name__  # the OpenAPI component names


def test_every_record_kind_has_a_feed_name_and_type() -> None:
    assert set(FEED_KIND_NAMES) == set(RecordKind)
    assert {RECORD_TYPES[FEED_KIND_NAMES[k]] for k in RecordKind} == set(TYPE_OF_KIND.values())


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_feed_item_encodes_its_record_as_before_and_decodes_it_typed(record: AnyRecord) -> None:
    kind = next(k for k, cls in TYPE_OF_KIND.items() if isinstance(record, cls))
    item = FeedItem(lsn=7, kind=FEED_KIND_NAMES[kind], id=HEX, committed_at=1.5, record=record)
    as_before = {
        "lsn": 7,
        "kind": FEED_KIND_NAMES[kind],
        "id": HEX,
        "committed_at": 1.5,
        "record": msgspec.to_builtins(record),
    }
    data = msgspec.json.encode(item)
    assert data == msgspec.json.encode(as_before)
    assert decode_feed_item(data) == item
    page = msgspec.json.encode(FeedPage(items=[item], next_after=7, last_lsn=9))
    assert decode_feed_page(page) == FeedPage(items=[item], next_after=7, last_lsn=9)


def test_feed_item_without_a_record_decodes_with_none() -> None:
    data = b'{"lsn":1,"kind":"vote","id":"%s","committed_at":1.0,"record":null}' % HEX.encode()
    assert decode_feed_item(data).record is None


def test_feed_item_of_an_unknown_kind_is_a_validation_error() -> None:
    data = b'{"lsn":1,"kind":"novel","id":"%s","committed_at":1.0,"record":{}}' % HEX.encode()
    with pytest.raises(msgspec.ValidationError, match="unknown record kind"):
        decode_feed_item(data)
