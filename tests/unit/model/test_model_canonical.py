"""canonical_json: the JCS rules our records depend on, and its rejections."""

from __future__ import annotations

import struct
from collections import OrderedDict
from enum import Enum
from typing import Any

import pytest

from stemedb.errors import ValidationError
from stemedb.model.canonical import MAX_SAFE_INTEGER, canonical_json, json_number

# RFC 8785 Appendix B: IEEE-754 bit patterns and their ES6 Number.toString form.
RFC8785_NUMBERS = {
    "0000000000000000": "0",
    "8000000000000000": "0",
    "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324",
    "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308",
    "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992",
    "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22",
    "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23",
    "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000",
    "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7",
    "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332",
    "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333",
    "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343",
    "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}


@pytest.mark.parametrize(("bits", "expected"), sorted(RFC8785_NUMBERS.items()))
def test_number_differs_from_rfc8785_appendix_b(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(value) == expected.encode()


def test_keys_out_of_order_are_sorted() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None], "c": "x"}) == b'{"a":[true,null],"b":1,"c":"x"}'
    )


def test_non_ascii_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+10000 is D800 DC00 in UTF-16, so it sorts before U+E000 (RFC 8785 §3.2.3).
    encoded = canonical_json({"\ue000": 1, "\U00010000": 2})
    assert encoded == '{"\U00010000":2,"\ue000":1}'.encode()


def test_control_characters_escape_like_jcs() -> None:
    assert canonical_json("\b\t\n\f\r\x00\x1f\x7f") == b'"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f"'


def test_quote_backslash_escaped_and_unicode_left_literal() -> None:
    assert canonical_json('"\\/\u2028\U0001f600') == '"\\"\\\\/\u2028\U0001f600"'.encode()


def test_negative_zero_encodes_as_zero() -> None:
    assert canonical_json([-0.0, 0.0]) == b"[0,0]"


def test_integral_float_encodes_like_int() -> None:
    assert canonical_json({"x": 3.0, "y": 3}) == b'{"x":3,"y":3}'


def test_tuple_encodes_as_array() -> None:
    assert canonical_json((1, "a")) == b'[1,"a"]'


def test_str_enum_and_ordered_dict_encode_as_base_types() -> None:
    class Colour(str, Enum):  # noqa: UP042 - str() of this kind is "Colour.RED"
        RED = "red"

    assert canonical_json(OrderedDict([("b", Colour.RED), ("a", 1)])) == b'{"a":1,"b":"red"}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_number_is_rejected_with_its_path(bad: float) -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json({"object": {"value": bad}})
    assert (info.value.field, info.value.rule) == ("object.value", "not_finite")


@pytest.mark.parametrize("bad", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64])
def test_integer_outside_safe_range_is_rejected(bad: int) -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json({"list": [0, bad]})
    assert (info.value.field, info.value.rule) == ("list[1]", "integer_out_of_range")


def test_safe_integer_bounds_are_accepted() -> None:
    assert canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
        b"[9007199254740991,-9007199254740991]"
    )


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json({"a": {1: "x"}})
    assert (info.value.field, info.value.rule) == ("a", "key_not_string")


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json({"subject": "bad\ud800"})
    assert (info.value.field, info.value.rule) == ("subject", "invalid_unicode")


@pytest.mark.parametrize("bad", [b"bytes", {1, 2}, object()])
def test_unsupported_type_is_rejected(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json({"x": bad})
    assert (info.value.field, info.value.rule) == ("x", "unsupported_type")


def test_root_error_names_the_root() -> None:
    with pytest.raises(ValidationError) as info:
        canonical_json(float("nan"))
    assert info.value.field == "$"


def test_json_number_rejects_nan() -> None:
    with pytest.raises(ValidationError) as info:
        json_number(float("nan"))
    assert info.value.rule == "not_finite"
