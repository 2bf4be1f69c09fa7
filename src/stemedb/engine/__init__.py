"""The engine: the single write path (group commit) and the read entry points."""

from stemedb.engine.engine import Engine
from stemedb.engine.settings import EngineSettings
from stemedb.engine.submission import Prepared, WriteResult

__all__ = ["Engine", "EngineSettings", "Prepared", "WriteResult"]
