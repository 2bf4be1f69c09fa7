"""``StemeStore``: LangGraph's ``BaseStore`` over the StemeDB SDK (``docs/reference/langgraph.md``).

Each operation is written once, as a plan: a generator that yields the SDK calls it needs
(``_Call``) and is sent their answers. ``batch`` runs the plans on a ``Client``, ``abatch``
on an ``AsyncClient`` — the same steps, awaited.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from stemedb.client import AgentKey, AsyncClient, Client, ObjectValue
from stemedb.langgraph import mapping

LENS: Final = "recency"
PAGE: Final = 1000  # claims or subjects per read while scanning (the API's cap)
SEARCH_PAGE: Final = 100  # hits per /v1/search page (its cap)
SEARCH_PAGES: Final = 5  # at most this many pages of hits per query


@dataclass(frozen=True)
class _Call:
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


_Plan = Generator[_Call, Any, Result]


class StemeStore(BaseStore):
    """A LangGraph store whose items are signed StemeDB claims.

    ``key`` signs every put and delete (the agent's identity in the trace); ``root`` is
    the subject prefix under which namespaces live; ``confidence`` is the confidence of
    the claims it writes.
    """

    def __init__(
        self,
        url: str,
        *,
        key: AgentKey,
        api_key: str | None = None,
        root: str = "langgraph",
        confidence: float = 1.0,
        timeout_seconds: float = 30.0,
    ) -> None:
        if not root or root.endswith("/"):
            raise ValueError("root must be a non-empty subject prefix without a trailing /")
        self.url, self.root, self.confidence = url, root, confidence
        self._options: dict[str, Any] = {
            "key": key,
            "api_key": api_key,
            "timeout_seconds": timeout_seconds,
        }
        self._client = Client(url, **self._options)

    # --- the BaseStore interface ---------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return [self._run(self._plan(op)) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        # An AsyncClient's connections belong to the event loop that opened them, and a
        # store may serve several loops (each asyncio.run): one client per batch.
        async with AsyncClient(self.url, **self._options) as client:
            return [await self._arun(client, self._plan(op)) for op in ops]

    @property
    def agent_id(self) -> str:
        """The agent (hex public key) that signs what this store writes."""
        return str(self._options["key"].agent_id)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StemeStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- running plans ----------------------------------------------------------------------

    def _run(self, plan: _Plan) -> Result:
        try:
            call = next(plan)
            while True:
                call = plan.send(getattr(self._client, call.method)(*call.args, **call.kwargs))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    @staticmethod
    async def _arun(client: AsyncClient, plan: _Plan) -> Result:
        try:
            call = next(plan)
            while True:
                answer = await getattr(client, call.method)(*call.args, **call.kwargs)
                call = plan.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _plan(self, op: Op) -> _Plan:
        if isinstance(op, GetOp):
            return self._get(op.namespace, op.key)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise TypeError(f"unknown operation {type(op).__name__}")

    # --- the plans --------------------------------------------------------------------------

    def _latest(self, namespace: tuple[str, ...], key: str) -> Generator[_Call, Any, Any]:
        """The winning claim's object of a key under the recency lens (None: never written)."""
        subject = mapping.namespace_subject(self.root, namespace)
        kwargs = {"lens": LENS, "limit": 1}
        answer = yield _Call("query", (subject, mapping.key_predicate(key)), kwargs)
        winner = None if answer.resolution is None else answer.resolution.winner
        return None if winner is None else winner.object

    def _get(self, namespace: tuple[str, ...], key: str) -> _Plan:
        obj = yield from self._latest(namespace, key)
        return mapping.to_item(namespace, key, obj)

    def _put(self, op: PutOp) -> _Plan:
        _check_namespace(op.namespace)
        subject = mapping.namespace_subject(self.root, op.namespace)
        predicate = mapping.key_predicate(op.key)
        now = mapping.now_iso()
        if op.value is None:
            yield self._write(subject, predicate, mapping.tombstone_object(now))
            return None
        previous = yield from self._latest(op.namespace, op.key)
        created = mapping.created_at_of(previous) or now
        yield self._write(subject, predicate, mapping.item_object(op.value, created, now))
        if op.index is not False:
            text = mapping.searchable_text(op.value, op.index)
            if text:
                predicate += mapping.TEXT_SUFFIX
                yield self._write(subject, predicate, ObjectValue("text", text))
        return None

    def _write(self, subject: str, predicate: str, obj: ObjectValue) -> _Call:
        record = self._client.sign_assertion(subject, predicate, obj, self.confidence)
        return _Call("assert_record", (record,))

    def _search(self, op: SearchOp) -> _Plan:
        prefix = mapping.namespace_subject(self.root, op.namespace_prefix)
        wanted = op.offset + op.limit
        found: list[SearchItem]
        if op.query:
            found = yield from self._search_text(op, prefix, wanted)
        else:
            found = yield from self._scan(op, prefix, wanted)
        return found[op.offset : wanted]

    def _scan(self, op: SearchOp, prefix: str, wanted: int) -> Generator[_Call, Any, Any]:
        """Every live item under ``prefix`` that passes the filter, newest first."""
        found: list[SearchItem] = []
        cursor: str | None = None
        while True:
            kwargs = {"subject_prefix": prefix, "lens": LENS, "limit": PAGE, "cursor": cursor}
            page = yield _Call("query", (), kwargs)
            for group in page.results or ():
                item = self._group_item(group)
                if item is not None and mapping.matches_filter(item.value, op.filter):
                    found.append(_search_item(item, None))
            cursor = page.next_cursor
            if cursor is None:
                break
        found.sort(key=lambda i: (i.updated_at, i.namespace, i.key), reverse=True)
        return found[:wanted]

    def _group_item(self, group: Any) -> Item | None:
        namespace = mapping.subject_namespace(self.root, group.subject)
        key = mapping.predicate_key(group.predicate)
        winner = group.resolution.winner
        if namespace is None or key is None or winner is None:
            return None
        return mapping.to_item(namespace, key, winner.object)

    def _search_text(self, op: SearchOp, prefix: str, wanted: int) -> Generator[_Call, Any, Any]:
        """Items whose namespace labels, key or text match ``op.query`` (``/v1/search``,
        BM25), best first."""
        scores: dict[tuple[tuple[str, ...], str], float] = {}
        cursor: str | None = None
        for _ in range(SEARCH_PAGES):
            kwargs = {"limit": SEARCH_PAGE, "cursor": cursor}
            page = yield _Call("search", (op.query,), kwargs)
            for hit in page.hits:
                namespace = mapping.subject_namespace(self.root, hit.subject)
                if namespace is None or not hit.subject.startswith(prefix):
                    continue
                predicate = hit.predicate.removesuffix(mapping.TEXT_SUFFIX)
                found = (namespace, mapping.predicate_key(predicate) or "")
                scores[found] = max(scores.get(found, hit.score), hit.score)
            cursor = page.next_cursor
            if cursor is None:
                break
        results: list[SearchItem] = []
        for (namespace, key), score in sorted(scores.items(), key=lambda kv: -kv[1]):
            obj = yield from self._latest(namespace, key)
            item = mapping.to_item(namespace, key, obj)
            if item is not None and mapping.matches_filter(item.value, op.filter):
                results.append(_search_item(item, score))
                if len(results) >= wanted:
                    break
        return results

    def _list_namespaces(self, op: ListNamespacesOp) -> _Plan:
        found: set[tuple[str, ...]] = set()
        cursor: str | None = None
        while True:
            kwargs = {"limit": PAGE, "cursor": cursor}
            page = yield _Call("subjects", (f"{self.root}/",), kwargs)
            for row in page.subjects:
                namespace = mapping.subject_namespace(self.root, row.subject)
                if namespace is None:
                    continue
                if all(mapping.matches_namespace(namespace, c) for c in op.match_conditions or ()):
                    found.add(namespace if op.max_depth is None else namespace[: op.max_depth])
            cursor = page.next_cursor
            if cursor is None:
                break
        return sorted(found)[op.offset : op.offset + op.limit]


def _search_item(item: Item, score: float | None) -> SearchItem:
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at, score)


def _check_namespace(namespace: tuple[str, ...]) -> None:
    """LangGraph's rules: at least one label, each a non-empty string without a period."""
    if not namespace:
        raise InvalidNamespaceError("namespace cannot be empty")
    for label in namespace:
        if not isinstance(label, str) or not label or "." in label:
            raise InvalidNamespaceError(
                f"namespace labels must be non-empty strings without '.'; got {namespace!r}"
            )
