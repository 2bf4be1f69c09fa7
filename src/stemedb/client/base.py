"""What ``Client`` and ``AsyncClient`` share: settings, headers, signing, decoding
answers, and the retry decisions (the two only differ in how they wait and send)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Final, TypedDict, TypeVar, Unpack

import httpx
import msgspec

from stemedb import __version__
from stemedb.client import calls
from stemedb.client.calls import Call
from stemedb.client.config import (
    DEFAULT_URL,
    api_key_from_env,
    key_from_env,
    url_from_env,
)
from stemedb.client.errors import (
    ApiError,
    NetworkError,
    SerializationError,
    error_from_response,
)
from stemedb.client.retry import RetryPolicy, RetryState, parse_retry_after
from stemedb.errors import ValidationError
from stemedb.model.records import (
    Assertion,
    BareValue,
    CoSignature,
    Epoch,
    EpochKind,
    Lifecycle,
    ObjectValue,
    Retraction,
    Source,
    SourceClass,
    Supersession,
    Vote,
)
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_assertion,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.wire import FeedPage, decode_feed_page

T = TypeVar("T")
ClientT = TypeVar("ClientT", bound="ClientBase")

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
USER_AGENT: Final = f"stemedb-python/{__version__}"
# A feed page's records are typed by each item's kind: it has its own decoder.
_DECODERS: dict[type[object], Callable[[bytes], object]] = {FeedPage: decode_feed_page}


def _decoder(answer: type[T]) -> Callable[[bytes], T]:
    found = _DECODERS.get(answer)
    if found is None:
        found = msgspec.json.Decoder(answer).decode
        _DECODERS[answer] = found
    return found  # type: ignore[return-value]


def decode_answer(call: Call[T], response: httpx.Response) -> T:
    """A success answer as ``call.answer``; a body that does not decode is an error."""
    try:
        return _decoder(call.answer)(response.content)
    except msgspec.MsgspecError as exc:
        raise SerializationError(
            f"the answer to {call.method} {call.path} does not decode as "
            f"{call.answer.__name__}: {exc}",
            code="bad_response",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from exc


def answer_error(response: httpx.Response) -> ApiError | NetworkError:
    return error_from_response(
        response.status_code,
        response.content,
        header_request_id=response.headers.get("x-request-id"),
        retry_after_seconds=parse_retry_after(response.headers.get("retry-after")),
    )


def transport_error(exc: httpx.HTTPError, call: Call[T], request_id: str) -> NetworkError:
    return NetworkError(
        f"{call.method} {call.path} failed: {type(exc).__name__}: {exc}".rstrip(": "),
        code="connect_error" if isinstance(exc, httpx.ConnectError) else "transport_error",
        status=0,
        request_id=request_id,
    )


def may_retry_transport(exc: httpx.HTTPError) -> bool:
    """Transport failures worth another attempt. The request may have reached the
    server before a read failed; every StemeDB request is idempotent (writes are named
    by content ID), so that is safe."""
    return isinstance(exc, httpx.TransportError)


class AssertionFields(TypedDict, total=False):
    """The optional fields of an assertion (``assert_(..., **fields)``)."""

    timestamp: int
    source_hash: str
    source_class: SourceClass
    epoch: str
    parent: str
    lifecycle: Lifecycle
    valid_from: int
    valid_to: int


def retry_delay(state: RetryState, error: ApiError | NetworkError, status: int) -> float | None:
    """The wait before retrying after an error answer, or None to raise it."""
    if status not in state.policy.retry_statuses:
        return None
    return state.next_delay(error.retry_after_seconds)


class ClientBase:
    """Settings and signing helpers of both clients."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        key: AgentKey | None = None,
        api_key: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds
        self.retry = RetryPolicy() if retry is None else retry
        base_headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        if api_key:
            base_headers["x-api-key"] = api_key
        if key is not None:
            base_headers["x-agent-id"] = key.agent_id
        base_headers.update({k.lower(): v for k, v in (headers or {}).items()})
        self._headers = base_headers

    @classmethod
    def from_env(
        cls: type[ClientT], environ: Mapping[str, str] | None = None, **kwargs: object
    ) -> ClientT:
        """A client configured by ``STEMEDB_URL``, ``STEMEDB_PRIVATE_KEY`` or
        ``STEMEDB_KEY_FILE``, and ``STEMEDB_API_KEY``; keyword arguments win."""
        kwargs.setdefault("key", key_from_env(environ))
        kwargs.setdefault("api_key", api_key_from_env(environ))
        url = kwargs.pop("url", None)
        return cls(str(url) if url is not None else url_from_env(environ), **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        agent = self.key.agent_id[:12] + "…" if self.key is not None else None
        return f"{type(self).__name__}(url={self.url!r}, agent={agent!r})"

    # --- requests ---------------------------------------------------------------

    def _request_headers(self, call: Call[T], request_id: str) -> dict[str, str]:
        headers = dict(self._headers)
        headers["x-request-id"] = request_id
        if call.body is not None:
            headers["content-type"] = "application/json"
        return headers

    def _timeout(self, call: Call[T], state: RetryState) -> float:
        return min(
            self.timeout_seconds + call.extra_timeout_seconds, max(0.001, state.remaining_seconds())
        )

    @staticmethod
    def _new_request_id() -> str:
        return uuid.uuid4().hex

    # --- signing ----------------------------------------------------------------

    def _signer(self) -> AgentKey:
        if self.key is None:
            raise ValidationError(
                "key",
                "required",
                "this client has no AgentKey to sign with; pass key=AgentKey.generate(), "
                "AgentKey.load(path), or set STEMEDB_PRIVATE_KEY / STEMEDB_KEY_FILE",
            )
        return self.key

    def sign_assertion(
        self,
        subject: str,
        predicate: str,
        object: ObjectValue | BareValue,
        confidence: float,
        **fields: Unpack[AssertionFields],
    ) -> Assertion:
        """An assertion signed with this client's key (nothing is sent)."""
        return sign_assertion(
            self._signer(),
            subject=subject,
            predicate=predicate,
            object=object,
            confidence=confidence,
            **fields,
        )

    def _cosignature(self, assertion_id: str) -> CoSignature:
        return cosign(self._signer(), assertion_id)

    def _vote(self, assertion_id: str, weight: float) -> Vote:
        return sign_vote(self._signer(), assertion_id=assertion_id, weight=weight)

    def _epoch(
        self, name: str, description: str, supersedes: tuple[str, ...], kind: EpochKind
    ) -> Epoch:
        return sign_epoch(
            self._signer(), name=name, description=description, supersedes=supersedes, kind=kind
        )

    def _supersession(self, old: str, new: str, reason: str) -> Supersession:
        return sign_supersession(self._signer(), old=old, new=new, reason=reason)

    def _source(
        self,
        uri: str,
        content: str | None,
        source_hash: str | None,
        title: str,
        source_class: SourceClass | None,
        published_at: int | None,
    ) -> Source:
        return sign_source(
            self._signer(),
            uri=uri,
            content=content,
            source_hash=source_hash,
            title=title,
            source_class=source_class,
            published_at=published_at,
        )

    def _retraction(self, source_hash: str, reason: str) -> Retraction:
        return sign_retraction(self._signer(), source_hash=source_hash, reason=reason)


__all__ = ["AssertionFields", "ClientBase", "calls"]
