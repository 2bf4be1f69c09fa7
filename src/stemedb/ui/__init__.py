"""The dashboard at ``/ui`` (ARCHITECTURE.md §12, docs/reference/ui.md): server-rendered
pages over the query services, htmx vendored, SVG charts, cookie sessions with CSRF."""

from stemedb.ui.routes import UI_PREFIX, ui_routes

__all__ = ["UI_PREFIX", "ui_routes"]
