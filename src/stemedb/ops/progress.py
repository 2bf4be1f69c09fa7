"""How long operations (backup, restore, verify) report progress: a small protocol the
CLI implements with a rich progress bar; ``NullProgress`` for library callers."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total_bytes: int) -> None:
        """A new step of ``total_bytes`` bytes begins."""
        ...

    def advance(self, nbytes: int) -> None: ...

    def note(self, message: str) -> None:
        """A one-line message between steps."""
        ...


class NullProgress:
    def start(self, description: str, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass
