"""The tools' inputs say what the server accepts."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from stemedb.lens import LENS_NAMES
from stemedb.mcp import inputs
from stemedb.mcp.server import json_schema
from stemedb.mcp.tools import TOOLS
from stemedb.model.records import SourceClass


def test_the_lens_and_source_class_enums_are_the_servers() -> None:
    assert set(get_args(inputs.Lens)) == set(LENS_NAMES)
    assert set(get_args(inputs.SourceClass)) == set(get_args(SourceClass))


def test_at_most_seven_tools_each_with_object_schemas_in_and_out() -> None:
    assert len(TOOLS) <= 7
    for spec in TOOLS:
        assert json_schema(spec.input)["type"] == "object"
        assert json_schema(spec.output)["type"] == "object"


def test_limits_default_to_10_and_stop_at_50() -> None:
    assert msgspec.convert({"subject": "s", "predicate": "p"}, inputs.QueryInput).limit == 10
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"subject": "s", "predicate": "p", "limit": 51}, inputs.QueryInput)


def test_retract_source_is_a_dry_run_unless_asked() -> None:
    args = msgspec.convert({"source_hash": "ab" * 32, "reason": "r"}, inputs.RetractSourceInput)
    assert args.dry_run is True
