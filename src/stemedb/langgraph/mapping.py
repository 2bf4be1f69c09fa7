"""How LangGraph's namespaces, keys and items map onto StemeDB claims
(``docs/reference/langgraph.md``), with no I/O: subjects and predicates, the signed
``json`` envelope of an item or a tombstone, filters and namespace match conditions.

- A namespace ``("users", "u1")`` is the subject ``{root}/users/u1/`` (each label
  percent-encoded, so ``/`` in a label cannot fake a level; the trailing ``/`` makes the
  namespace prefix ``("users",)`` the subject prefix ``{root}/users/``, which
  ``{root}/users2/`` does not match).
- A key is the predicate (percent-encoded); its searchable text, the predicate
  ``{key}#text`` (``#`` never appears in an encoded key).
- An item is a claim whose object is ``{"type": "json", "value": {"item": value,
  "created_at": iso, "updated_at": iso}}``; a delete is a claim of
  ``{"deleted": true, "updated_at": iso}`` (a tombstone). The recency lens names the
  newest claim of a key, so the latest put or delete is what a read sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, unquote

from langgraph.store.base import Item, MatchCondition

from stemedb.client import ObjectValue

TEXT_SUFFIX: Final = "#text"
TEXT_MAX_CHARS: Final = 16_000  # well under the 64 KiB of a text value


def namespace_subject(root: str, namespace: tuple[str, ...]) -> str:
    """The subject (a namespace) or subject prefix (a namespace prefix) of ``namespace``."""
    return f"{root}/" + "".join(f"{quote(label, safe='')}/" for label in namespace)


def subject_namespace(root: str, subject: str) -> tuple[str, ...] | None:
    """The namespace of a subject of ours, or None for any other subject."""
    head = f"{root}/"
    if not subject.startswith(head) or not subject.endswith("/") or subject == head:
        return None
    return tuple(unquote(label) for label in subject[len(head) : -1].split("/"))


def key_predicate(key: str) -> str:
    return quote(key, safe="")


def predicate_key(predicate: str) -> str | None:
    """The key of an item predicate (None for a ``#text`` predicate)."""
    return None if predicate.endswith(TEXT_SUFFIX) else unquote(predicate)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def item_object(value: Mapping[str, Any], created_at: str, updated_at: str) -> ObjectValue:
    body = {"item": dict(value), "created_at": created_at, "updated_at": updated_at}
    return ObjectValue("json", body)


def tombstone_object(updated_at: str) -> ObjectValue:
    return ObjectValue("json", {"deleted": True, "updated_at": updated_at})


def created_at_of(obj: ObjectValue | None) -> str | None:
    """The creation time an item keeps across updates (None: deleted or never written)."""
    body = _body(obj)
    return None if body is None else str(body["created_at"])


def to_item(namespace: tuple[str, ...], key: str, obj: ObjectValue | None) -> Item | None:
    """The item a winning claim holds, or None for a tombstone (or a claim not of ours)."""
    body = _body(obj)
    if body is None:
        return None
    return Item(
        value=body["item"],
        key=key,
        namespace=namespace,
        created_at=datetime.fromisoformat(body["created_at"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
    )


def _body(obj: ObjectValue | None) -> dict[str, Any] | None:
    if obj is None or obj.type != "json" or type(obj.value) is not dict:
        return None
    body = obj.value
    return body if type(body.get("item")) is dict else None


def searchable_text(value: Mapping[str, Any], fields: Iterable[str] | None) -> str:
    """The words ``/v1/search`` indexes for an item: its string leaves (of ``fields``, dotted
    paths, when the put names them), cut at ``TEXT_MAX_CHARS``."""
    roots: list[Any] = [value] if fields is None else [_at_path(value, f) for f in fields]
    words: list[str] = []
    while roots:
        node = roots.pop(0)
        if isinstance(node, str):
            words.append(node)
        elif isinstance(node, Mapping):
            roots[:0] = list(node.values())
        elif isinstance(node, list):
            roots[:0] = node
    return " ".join(words)[:TEXT_MAX_CHARS]


def _at_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def matches_filter(value: Mapping[str, Any], conditions: Mapping[str, Any] | None) -> bool:
    """LangGraph's filter: every key equal, or meeting its ``$eq $ne $gt $gte $lt $lte``."""
    return all(_matches(value.get(k), v) for k, v in (conditions or {}).items())


_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
}


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping) and any(str(k).startswith("$") for k in wanted):
        for op, operand in wanted.items():
            if op not in _OPERATORS:
                raise ValueError(f"unsupported filter operator {op!r}")
            try:
                if not _OPERATORS[op](actual, operand):
                    return False
            except TypeError:
                return False
        return True
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            _matches(actual.get(k), v) for k, v in wanted.items()
        )
    return bool(actual == wanted)


def matches_namespace(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """A ``prefix``/``suffix`` condition, ``*`` matching any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        part = namespace[: len(path)]
    elif condition.match_type == "suffix":
        part = namespace[len(namespace) - len(path) :]
    else:
        raise ValueError(f"unsupported match type {condition.match_type!r}")
    return all(p in ("*", n) for n, p in zip(part, path, strict=True))
