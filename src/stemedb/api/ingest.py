"""Coalesces concurrent single-record writes into one engine call per loop iteration.

Every ``POST /v1/assert`` (and other single-record write) that arrives in the same
event-loop iteration joins one ``Engine.write_each_async`` call, which verifies them
(in the writer process with one HTTP process; with several, here: a small group in the
loop itself, a larger one on the verify threads, 16 records a chunk) and hands them to
the writer; the loop wakes once per chunk when it is committed. Under
light load a request is alone in its iteration and goes straight through (the flush is
a ``call_soon``, not a timer), so latency does not grow. Each record keeps its own
outcome: a bad signature fails only its request, and an in-group duplicate is answered
``exists`` as before (the writer checks the group).
"""

from __future__ import annotations

import asyncio
from typing import Final

from stemedb.engine import Engine, WriteResult
from stemedb.errors import StemeError
from stemedb.model.kinds import AnyRecord

MAX_GROUP_RECORDS: Final = 1024

_Pending = tuple[AnyRecord, "asyncio.Future[WriteResult]"]


class WriteCoalescer:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: list[_Pending] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, record: AnyRecord) -> WriteResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        self._pending.append((record, future))
        if len(self._pending) >= MAX_GROUP_RECORDS:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        group, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._commit(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            outcomes = await self._engine.write_each_async([record for record, _ in group])
        except BaseException as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # the request timed out or the client went away
                continue
            if isinstance(outcome, StemeError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
