"""The WAL's metrics hook. The API layer wires it to Prometheus; the default does nothing."""

from __future__ import annotations

from typing import Protocol


class WalObserver(Protocol):
    def on_fsync(self, duration_seconds: float) -> None: ...

    def on_append(self, records: int, bytes: int) -> None: ...

    def on_rotation(self) -> None: ...

    def on_fsync_error(self) -> None: ...


class NullWalObserver:
    """A ``WalObserver`` that ignores everything."""

    def on_fsync(self, duration_seconds: float) -> None:
        pass

    def on_append(self, records: int, bytes: int) -> None:
        pass

    def on_rotation(self) -> None:
        pass

    def on_fsync_error(self) -> None:
        pass
