"""Every SDK answer is a typed struct to the bottom (no ``dict`` field, no store type),
and ``Client`` and ``AsyncClient`` have the same methods with the same parameters and
answer types."""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncGenerator, Generator, Iterator

import httpx
import msgspec
import msgspec.inspect as mi
from support.client_server import ServerProcess

from stemedb.client import (
    AgentCounts,
    AgentKey,
    AsyncClient,
    AuditParameters,
    Client,
    calls,
    types,
)
from stemedb.model.kinds import TYPE_OF_KIND

# An error's details are free-form on every error envelope (ApiError.details too); a
# feed item's record is a JSON object to msgspec and the record struct of its kind once
# decode_feed_page / decode_feed_item converted it (test_client_reads.py checks that).
# An object value of type json is any JSON object or array: it is the claim itself.
FREE_FORM = {"ErrorBody.details", "FeedItem.record", "ObjectValue.value"}


def _answer_types() -> set[type]:
    found: set[type] = set()
    for fn in vars(calls).values():
        if inspect.isfunction(fn):
            returned = typing.get_type_hints(fn).get("return")
            if typing.get_origin(returned) is calls.Call:
                found.add(typing.get_args(returned)[0])
    return found


def _untyped(info: mi.Type, seen: frozenset[type], where: str) -> Iterator[str]:
    if isinstance(info, mi.DictType | mi.AnyType) or (
        isinstance(info, mi.CustomType) and info.cls is object
    ):
        yield where
        return
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return
        assert info.cls.__module__.startswith(("stemedb.wire", "stemedb.model", "stemedb.client"))
        for field in info.fields:
            name = f"{info.cls.__name__}.{field.name}"
            if name not in FREE_FORM:
                yield from _untyped(field.type, seen | {info.cls}, name)
        return
    for attribute in ("item_type", "value_type", "types"):
        inner = getattr(info, attribute, None)
        for each in inner if isinstance(inner, tuple) else (() if inner is None else (inner,)):
            yield from _untyped(each, seen, where)


def test_every_answer_is_typed_to_the_bottom() -> None:
    answers = _answer_types()
    assert len(answers) >= 20 and types.AgentInfo in answers and types.AuditList in answers
    records = set(TYPE_OF_KIND.values())
    untyped = [w for t in answers | records for w in _untyped(mi.type_info(t), frozenset(), "")]
    assert untyped == []


def _public(cls: type) -> dict[str, typing.Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


def _answer(cls: type, name: str) -> object:
    returned = typing.get_type_hints(getattr(cls, name)).get("return")
    origin = typing.get_origin(returned)
    if origin in (Generator, AsyncGenerator):
        return ("stream", typing.get_args(returned)[0])
    return returned


def test_sync_and_async_methods_take_the_same_parameters_and_answer_the_same_types() -> None:
    sync, asynchronous = _public(Client), _public(AsyncClient)
    assert set(sync) == set(asynchronous)
    for name in sync:
        ours, theirs = inspect.signature(sync[name]), inspect.signature(asynchronous[name])
        assert list(ours.parameters.values()) == list(theirs.parameters.values()), name
        assert _answer(Client, name) == _answer(AsyncClient, name), name
        is_async = inspect.iscoroutinefunction(asynchronous[name]) or (
            inspect.isasyncgenfunction(asynchronous[name])
        )
        blocking = name in ("sign_assertion", "from_env")
        assert is_async != blocking, name


def test_agent_counts_and_audit_parameters_are_structs(
    server: ServerProcess, alice: AgentKey, subject: str
) -> None:
    with Client(server.url, key=alice) as db:
        db.assert_(subject, "risk", "rare", 0.8)
        result = db.query(subject, "risk", lens="recency", source_class=["expert"], limit=5)
        info = db.agent(alice.agent_id)
        audited = db.audit_query(result.query_id)
    assert isinstance(info.counts, AgentCounts) and info.counts.assertions >= 1
    assert isinstance(audited.parameters, AuditParameters)
    assert (audited.parameters.subject, audited.parameters.lens) == (subject, "recency")
    assert audited.parameters.source_class == ["expert"] and audited.parameters.limit == 5
    # every parameter the server keeps is a field of AuditParameters (none dropped)
    raw = httpx.get(f"{server.url}/v1/audit/queries/{result.query_id}").json()
    assert set(raw["parameters"]) <= set(AuditParameters.__struct_fields__)
    counts = httpx.get(f"{server.url}/v1/agents/{alice.agent_id}").json()["counts"]
    assert set(counts) == set(AgentCounts.__struct_fields__)
    assert msgspec.structs.asdict(info.counts) == counts
