"""Templates (Jinja2, autoescaped), their filters, and the headers of every page.

Every page is one server-rendered HTML document: readable without JavaScript, styled
by ``/ui/static/ui.css``, enhanced by the vendored htmx and ``ui.js`` only. The
Content-Security-Policy allows nothing inline (no script, no style attribute), nothing
from another origin, and no framing.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stemedb.model.records import ObjectValue

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_JSON: Final = msgspec.json.Encoder()


def show_value(value: object) -> str:
    """A claimed value as one line of text."""
    if isinstance(value, ObjectValue):
        inner = value.value
        if isinstance(inner, bool):
            return "true" if inner else "false"
        if isinstance(inner, str):
            return inner
        return _JSON.encode(inner).decode()
    return str(value)


def show_time(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    if seconds > 1e14:  # nanoseconds
        seconds = seconds / 1e9
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def show_short(text: str | None, size: int = 12) -> str:
    if not text:
        return "—"
    return text if len(text) <= size else text[:size] + "…"


def show_number(number: float | None, digits: int = 3) -> str:
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        return "—"
    return f"{number:.{digits}f}"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("stemedb.ui", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=show_value, ts=show_time, short=show_short, num=show_number)
    return env


def render(env: Environment, template: str, context: dict[str, Any]) -> str:
    return env.get_template(template).render(**context)


__all__ = ["CSP", "PAGE_HEADERS", "environment", "render", "show_value"]
