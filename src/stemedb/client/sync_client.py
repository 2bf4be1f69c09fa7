"""``Client``: the blocking StemeDB client (httpx.Client underneath)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx
import msgspec

from stemedb.client import calls
from stemedb.client.base import (
    DEFAULT_TIMEOUT_SECONDS,
    AssertionFields,
    ClientBase,
    answer_error,
    decode_answer,
    may_retry_transport,
    retry_delay,
    transport_error,
)
from stemedb.client.calls import Call, QueryFilters, SignedRecord
from stemedb.client.config import DEFAULT_URL
from stemedb.client.errors import SerializationError
from stemedb.client.retry import RetryPolicy, RetryState
from stemedb.client.sse import SseParser, feed_item
from stemedb.client.types import (
    AgentInfo,
    AssertionDetail,
    AuditRecord,
    BatchResult,
    EpochRow,
    FeedItem,
    FeedPage,
    Health,
    PredicateList,
    QueryResult,
    QuerySpec,
    Readiness,
    RetractionImpact,
    SearchResponse,
    SkepticResult,
    SourceList,
    SourceRow,
    SourceWriteResult,
    SubjectList,
    TraceResult,
    WriteResult,
)
from stemedb.model.records import Assertion, BareValue, EpochKind, ObjectValue, SourceClass
from stemedb.model.signing import AgentKey

T = TypeVar("T")


class Client(ClientBase):
    """A blocking client. Writes are signed with ``key``; every call retries 429/503
    and transport failures per ``retry`` (see ``stemedb.client.retry``).

    >>> with Client("http://127.0.0.1:18180", key=AgentKey.generate()) as db:
    ...     db.assert_("drugs/x", "risk", "rare", 0.8)
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        key: AgentKey | None = None,
        api_key: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            key=key,
            api_key=api_key,
            timeout_seconds=timeout_seconds,
            retry=retry,
            headers=headers,
        )
        self._http = httpx.Client(
            base_url=self.url, transport=transport, timeout=self.timeout_seconds
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        state = RetryState(self.retry)
        request_id = self._new_request_id()
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    headers=self._request_headers(call, request_id),
                    timeout=self._timeout(call, state),
                )
            except httpx.HTTPError as exc:
                error = transport_error(exc, call, request_id)
                delay = state.next_delay(None) if may_retry_transport(exc) else None
                if delay is None:
                    raise error from exc
                time.sleep(delay)
                continue
            if response.status_code in call.accept:
                return decode_answer(call, response)
            api_error = answer_error(response)
            delay = retry_delay(state, api_error, response.status_code)
            if delay is None:
                raise api_error
            time.sleep(delay)

    # --- writes -------------------------------------------------------------------

    def assert_(
        self,
        subject: str,
        predicate: str,
        object: ObjectValue | BareValue,
        confidence: float,
        **fields: Unpack[AssertionFields],
    ) -> WriteResult:
        """Sign an assertion with this client's key and store it."""
        record = self.sign_assertion(subject, predicate, object, confidence, **fields)
        return self._send(calls.write(record))

    def assert_record(self, record: Assertion) -> WriteResult:
        """Store an assertion that is already signed."""
        return self._send(calls.write(record))

    def assert_batch(self, records: Iterable[Assertion]) -> BatchResult:
        """Store many signed assertions in one group commit; per-item results."""
        return self._send(calls.assert_batch(records))

    def write(self, record: SignedRecord) -> WriteResult:
        """Send any signed record (assertion, co-signature, vote, epoch, …) to its route."""
        return self._send(calls.write(record))

    def cosign(self, assertion_id: str) -> WriteResult:
        return self._send(calls.write(self._cosignature(assertion_id)))

    def vote(self, assertion_id: str, weight: float) -> WriteResult:
        return self._send(calls.write(self._vote(assertion_id, weight)))

    def epoch(
        self,
        name: str,
        description: str = "",
        *,
        supersedes: Sequence[str] = (),
        kind: EpochKind = "replace",
    ) -> WriteResult:
        record = self._epoch(name, description, tuple(supersedes), kind)
        return self._send(calls.write(record))

    def supersede(self, old: str, new: str, reason: str) -> WriteResult:
        return self._send(calls.write(self._supersession(old, new, reason)))

    def register_source(
        self,
        uri: str,
        content: str | None = None,
        *,
        source_hash: str | None = None,
        title: str = "",
        source_class: SourceClass | None = None,
        published_at: int | None = None,
    ) -> SourceWriteResult:
        """Register a source; ``source_hash`` (what assertions cite) defaults to
        sha256(content), and is in the answer."""
        record = self._source(uri, content, source_hash, title, source_class, published_at)
        written = self._send(calls.write(record))
        return SourceWriteResult(written.id, written.lsn, written.status, record.source_hash)

    def retract_source(self, source_hash: str, reason: str) -> WriteResult:
        return self._send(calls.write(self._retraction(source_hash, reason)))

    def retraction_impact(self, source_hash: str, *, limit: int | None = None) -> RetractionImpact:
        """What retracting ``source_hash`` would exclude (a dry run: nothing is written,
        nothing signed): the claims citing it and their descendants, first ``limit``."""
        return self._send(calls.retraction_impact(source_hash, limit))

    # --- reads --------------------------------------------------------------------

    def get_assertion(self, assertion_id: str) -> AssertionDetail:
        return self._send(calls.get_assertion(assertion_id))

    def query(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        *,
        subject_prefix: str | None = None,
        **filters: Unpack[QueryFilters],
    ) -> QueryResult:
        """One page of ``GET /v1/query``; pass ``cursor=page.next_cursor`` for the next."""
        return self._send(calls.query(subject, predicate, subject_prefix, filters))

    def query_all(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        *,
        subject_prefix: str | None = None,
        **filters: Unpack[QueryFilters],
    ) -> Generator[QueryResult, None, None]:
        """Every page of a query, following ``next_cursor``."""
        while True:
            page = self.query(subject, predicate, subject_prefix=subject_prefix, **filters)
            yield page
            if page.next_cursor is None:
                return
            filters["cursor"] = page.next_cursor

    def query_batch(self, queries: Iterable[QuerySpec | Mapping[str, Any]]) -> list[QueryResult]:
        """Many queries in one request (``POST /v1/query``), answers in order."""
        specs = [q if isinstance(q, QuerySpec) else msgspec.convert(q, QuerySpec) for q in queries]
        return self._send(calls.query_batch(specs)).results

    def skeptic(
        self, subject: str, predicate: str, **filters: Unpack[QueryFilters]
    ) -> SkepticResult:
        return self._send(calls.skeptic(subject, predicate, filters))

    def trace(self, assertion_id: str) -> TraceResult:
        return self._send(calls.trace(assertion_id))

    def audit_queries(
        self,
        *,
        agent_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Audited queries, newest first (``since``/``until`` are ``from``/``to``)."""
        return self._send(calls.audit_queries(agent_id, since, until, limit)).queries

    def audit_query(self, query_id: str) -> AuditRecord:
        return self._send(calls.audit_query(query_id))

    def feed(
        self, after: int = 0, limit: int | None = None, wait_seconds: float | None = None
    ) -> FeedPage:
        """Committed records after LSN ``after``; long-polls up to ``wait_seconds``."""
        return self._send(calls.feed(after, limit, wait_seconds))

    def stream_feed(self, after: int = 0) -> Generator[FeedItem, None, None]:
        """Every committed record after ``after``, as it commits (SSE). Reconnects after
        a transport failure, resuming after the last item (``Last-Event-ID``); ends when
        the server closes the stream."""
        state = RetryState(self.retry)
        call = Call("GET", "/v1/feed/stream", FeedItem)
        last = after
        while True:
            request_id = self._new_request_id()
            headers = {**self._request_headers(call, request_id), "accept": "text/event-stream"}
            if last:
                headers["last-event-id"] = str(last)
            timeout = httpx.Timeout(self.timeout_seconds, read=None)
            try:
                with self._http.stream(
                    "GET", call.path, params={"after": str(after)}, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        api_error = answer_error(response)
                        delay = retry_delay(state, api_error, response.status_code)
                        if delay is None:
                            raise api_error
                        time.sleep(delay)
                        continue
                    parser = SseParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        try:
                            item = feed_item(event)
                        except msgspec.MsgspecError as exc:
                            raise SerializationError(
                                f"a feed event does not decode: {exc}",
                                code="bad_response",
                                status=200,
                                request_id=request_id,
                            ) from exc
                        last = item.lsn
                        state = RetryState(self.retry)
                        yield item
                return
            except httpx.HTTPError as exc:
                error = transport_error(exc, call, request_id)
                delay = state.next_delay(None)
                if delay is None:
                    raise error from exc
                time.sleep(delay)

    def agent(self, agent_id: str) -> AgentInfo:
        return self._send(calls.agent(agent_id))

    def epochs(self) -> list[EpochRow]:
        return self._send(calls.epochs()).epochs

    def get_epoch(self, epoch_id: str) -> EpochRow:
        return self._send(calls.get_epoch(epoch_id))

    def sources(self, *, cursor: str | None = None, limit: int | None = None) -> SourceList:
        return self._send(calls.sources(cursor, limit))

    def search(
        self,
        q: str,
        *,
        mode: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchResponse:
        """Ranked hits for the words ``q`` (``mode="fts"``: the FTS5 query language),
        10 per page by default; ``suggestions`` when nothing matched."""
        return self._send(calls.search(q, mode, limit, cursor))

    def subjects(
        self, prefix: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> SubjectList:
        """Subjects (under ``prefix``) with their predicates and stored assertions."""
        return self._send(calls.subjects(prefix, limit, cursor))

    def predicates(
        self, subject: str, *, limit: int | None = None, cursor: str | None = None
    ) -> PredicateList:
        """The subject's predicates with their stored assertions."""
        return self._send(calls.predicates(subject, limit, cursor))

    def get_source(self, source_hash: str) -> SourceRow:
        return self._send(calls.get_source(source_hash))

    def health(self) -> Health:
        return self._send(calls.health())

    def ready(self) -> Readiness:
        """Readiness; a 503 ``not_ready`` is returned, not raised."""
        return self._send(calls.ready())
