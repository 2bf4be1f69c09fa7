"""What a module-level handler serves: the ``ApiState`` of the app the request came to.

``create_app`` keeps the state on the app (``app.api_state``, and ``app.state.api`` for
callers outside the request path); Starlette puts the app in every request's scope, so
``state_of(request)`` is two plain lookups (``app.state``'s ``__getattr__`` costs ~1 µs).
"""

from __future__ import annotations

from starlette.requests import Request

from stemedb.api.state import ApiState


def state_of(request: Request) -> ApiState:
    """The ``ApiState`` of the app serving ``request``."""
    state: ApiState = request.scope["app"].api_state
    return state


__all__ = ["state_of"]
