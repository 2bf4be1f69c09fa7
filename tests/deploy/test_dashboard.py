"""deploy/grafana/stemedb-dashboard.json: valid JSON, every PromQL expression parses
(``promtool check rules`` on the expressions as recording rules, Grafana's variables
substituted) and names only the metrics of API.md (plus the documented job/archive
metrics), and it covers the API, the WAL, the storage and ingest."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from deploy_helpers import (
    DEPLOY,
    EXPORTER_METRICS,
    allowed_metric_names,
    metric_names_in,
    other_metric_names_in,
    require_tool,
)

DASHBOARD = DEPLOY / "grafana" / "stemedb-dashboard.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "${datasource}": "x"}
MUST_SHOW = {
    "API": {
        "stemedb_http_requests_total",
        "stemedb_error_count_by_type",
        "stemedb_http_request_duration_seconds",
    },
    "WAL": {
        "stemedb_wal_fsync_duration_seconds",
        "stemedb_wal_batch_size",
        "stemedb_wal_bytes_written_total",
        "stemedb_wal_segments",
        "stemedb_wal_fsync_errors_total",
    },
    "Storage": {
        "stemedb_storage_operation_duration_seconds",
        "stemedb_storage_operation_errors_total",
        "stemedb_assertions_total",
        "stemedb_cache_hits_total",
        "stemedb_cache_misses_total",
    },
    "Ingest": {"stemedb_assertions_ingested_total"},
}


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in data["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(data: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(data) for t in p.get("targets", [])]
    for var in data["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict) and "label_values(" in query.get("query", ""):
            inner = query["query"].split("label_values(", 1)[1].rsplit(",", 1)[0]
            exprs.append(inner)
    return exprs


def test_every_expression_uses_only_contract_metric_names() -> None:
    allowed = allowed_metric_names()
    for expr in expressions(dashboard()):
        unknown = metric_names_in(expr) - allowed
        assert not unknown, (expr, unknown)
        assert other_metric_names_in(expr) <= EXPORTER_METRICS, expr


def test_every_expression_parses(tmp_path: Path) -> None:
    rules = []
    for i, expr in enumerate(expressions(dashboard())):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"stemedb:dashboard_expr_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_api_wal_storage_and_ingest() -> None:
    data = dashboard()
    used = set().union(*(metric_names_in(e) for e in expressions(data)))
    for area, names in MUST_SHOW.items():
        assert names <= used, (area, names - used)
    rows = {p["title"] for p in data["panels"] if p["type"] == "row"}
    assert {"API", "WAL", "Storage", "Ingest"} <= rows


def test_panels_do_not_overlap_and_ids_are_unique() -> None:
    data = dashboard()
    ids = [p["id"] for p in panels(data)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels(data):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not cells & mine, p["title"]
        cells |= mine
