"""LangGraph's long-term memory store on StemeDB: ``StemeStore`` is a
``langgraph.store.base.BaseStore`` over the SDK (``pip install "stemedb[langgraph]"``).

It imports the SDK (``stemedb.client``) and LangGraph only, never a server module
(import-linter contract ``langgraph-over-the-sdk``). See ``docs/reference/langgraph.md``.
"""

from stemedb.langgraph.store import StemeStore

__all__ = ["StemeStore"]
