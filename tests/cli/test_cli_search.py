"""``stemedb search`` (and "did you mean" in ``stemedb query``) as subprocesses against
a real server."""

from __future__ import annotations

import json
import uuid

from cli_helpers import RunCli
from support.client_server import ServerProcess

from stemedb.client import AgentKey, Client


def test_search_prints_hits_as_a_table_or_the_servers_json(
    run_cli: RunCli, server: ServerProcess
) -> None:
    token = "c" + uuid.uuid4().hex[:10]
    subject = f"cli/{token}/semaglutide"
    with Client(server.url, key=AgentKey.from_seed(b"\x61" * 32)) as db:
        db.assert_(subject, "gastroparesis_risk", "rare", 0.8)

    shown = run_cli("search", token, "gastroparesis", "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert subject in shown.stdout and "gastroparesis_risk" in shown.stdout
    assert "1 hits" in shown.stdout

    as_json = run_cli("search", token, "--json", "--url", server.url)
    assert as_json.returncode == 0, as_json.stderr
    (hit,) = json.loads(as_json.stdout)["hits"]
    assert (hit["subject"], hit["matched_field"]) == (subject, "subject")

    fts = run_cli("search", f"{token[:6]}*", "--fts", "--json", "--url", server.url)
    assert json.loads(fts.stdout)["hits"][0]["subject"] == subject

    missed = run_cli("search", f"cli/{token}/semaglutdie", "--url", server.url)
    assert missed.returncode == 0, missed.stderr
    assert f"did you mean: {subject}" in missed.stdout

    query = run_cli("query", f"cli/{token}/semaglutid", "gastroparesis_risk", "--url", server.url)
    assert f"did you mean: {subject} gastroparesis_risk (1 claims)" in query.stdout

    bad = run_cli("search", "x AND", "--fts", "--url", server.url)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ValidationError: q is not a valid full-text query")
