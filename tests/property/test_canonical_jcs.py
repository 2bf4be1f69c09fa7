"""canonical_json is byte-identical to the reference rfc8785.dumps on any JSON value."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stemedb.model.canonical import MAX_SAFE_INTEGER, canonical_json

TRICKY_FLOATS = [
    1e21,
    1e-7,
    5e-324,
    0.1 + 0.2,
    -0.0,
    0.0,
    1e16,
    1e-4,
    9.999999999999999e-5,
    9999999999999998.0,
    2.0**53,
    2.0**53 + 2,
    -(2.0**60),
    1.7976931348623157e308,
    2.2250738585072014e-308,
    123456789012345680000.0,
    1e23,
    0.5,
    100.0,
    -3.0,
]
TRICKY_STRINGS = [
    "",
    "\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1f",
    '"quoted" \\back\\slash/',
    "\x7f\x80\x9f\u00a0",
    "\u2028\u2029",
    "\U0001f600 emoji \U0001f9ec",
    "\ue000\uffff\U00010000",
    "drugs/semaglutide",
    "fda://label/123",
]

no_surrogates = st.characters(blacklist_categories=("Cs",))
json_text = st.one_of(st.sampled_from(TRICKY_STRINGS), st.text(alphabet=no_surrogates))
json_float = st.one_of(
    st.sampled_from(TRICKY_FLOATS), st.floats(allow_nan=False, allow_infinity=False)
)
json_int = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
json_scalar = st.one_of(st.none(), st.booleans(), json_int, json_float, json_text)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(json_text, children, max_size=5),
    ),
    max_leaves=25,
)

hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
assertion_record = st.fixed_dictionaries(
    {
        "subject": json_text,
        "predicate": json_text,
        "object": st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "value": json_text}),
            st.fixed_dictionaries({"type": st.just("number"), "value": json_float}),
            st.fixed_dictionaries({"type": st.just("boolean"), "value": st.booleans()}),
        ),
        "confidence": st.floats(min_value=0.0, max_value=1.0),
        "source_hash": st.none() | hex64,
        "source_class": st.none() | st.sampled_from(["regulatory", "expert"]),
        "epoch": st.none() | hex64,
        "parent": st.none() | hex64,
        "lifecycle": st.sampled_from(["proposed", "approved"]),
        "valid_from": st.none() | json_int,
        "valid_to": st.none() | json_int,
        "timestamp": st.integers(min_value=0, max_value=2**40),
    }
)


@settings(max_examples=1000)
@given(json_value)
@example(1e21)
@example(-0.0)
@example({"\ue000": 1, "\U00010000": 2, "a": 3})
def test_arbitrary_json_matches_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=500)
@given(assertion_record)
def test_generated_assertion_content_matches_reference(record: dict[str, Any]) -> None:
    assert canonical_json(record) == rfc8785.dumps(record)


@settings(max_examples=2000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_matches_reference(x: float) -> None:
    assert canonical_json(x) == rfc8785.dumps(x)


@settings(max_examples=1000)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_random_bit_pattern_floats_match_reference(bits: int) -> None:
    x = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    if not math.isfinite(x):
        return
    assert canonical_json(x) == rfc8785.dumps(x)


@pytest.mark.parametrize("x", TRICKY_FLOATS)
def test_tricky_float_matches_reference(x: float) -> None:
    assert canonical_json([x]) == rfc8785.dumps([x])


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_tricky_string_matches_reference(text: str) -> None:
    assert canonical_json({text: text}) == rfc8785.dumps({text: text})
