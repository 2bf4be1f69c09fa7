"""``stemedb assert``, ``stemedb query``, ``stemedb keygen`` and ``stemedb demo --url``
run as subprocesses against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import RunCli
from support.client_server import ServerProcess, free_port

from stemedb.cli.demo import PREDICATE, SUBJECT
from stemedb.client import AgentKey, Client, ObjectValue


def keygen(run_cli: RunCli, path: Path) -> str:
    done = run_cli("keygen", "--out", str(path))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["key_file"] == str(path)
    return str(answer["agent_id"])


def test_keygen_prints_json_the_sdk_reads(run_cli: RunCli, tmp_path: Path) -> None:
    done = run_cli("keygen")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert AgentKey.from_hex(answer["private_key"]).agent_id == answer["agent_id"]
    path = tmp_path / "agent.key"
    agent_id = keygen(run_cli, path)
    assert AgentKey.load(path).agent_id == agent_id
    assert path.stat().st_mode & 0o777 == 0o600


def test_keygen_refuses_to_overwrite_a_key_file(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    keygen(run_cli, path)
    before = path.read_text()
    done = run_cli("keygen", "--out", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ValidationError: ")
    assert path.read_text() == before


def test_assert_signs_with_the_key_file_and_query_shows_it(
    run_cli: RunCli, server: ServerProcess, tmp_path: Path, subject: str
) -> None:
    key_file = tmp_path / "agent.key"
    agent_id = keygen(run_cli, key_file)
    done = run_cli(
        "assert",
        subject,
        "risk",
        "0.25",
        "--type",
        "number",
        "--confidence",
        "0.9",
        "--source-class",
        "clinical",
        "--url",
        server.url,
        "--key-file",
        str(key_file),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["status"] == "created" and written["agent_id"] == agent_id

    with Client(server.url) as db:
        detail = db.get_assertion(written["id"])
    assert detail.assertion.object == ObjectValue("number", 0.25)
    assert detail.assertion.confidence == 0.9 and detail.source_class == "clinical"

    shown = run_cli("query", subject, "risk", "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert "0.25" in shown.stdout and "clinical" in shown.stdout and "winner" in shown.stdout

    as_json = run_cli("query", subject, "risk", "--lens", "recency", "--json", "--url", server.url)
    answer = json.loads(as_json.stdout)
    assert answer["lens"] == "recency"
    assert answer["claims"][0]["id"] == written["id"]


def test_assert_and_query_take_the_url_and_key_from_the_environment(
    run_cli: RunCli, server: ServerProcess, subject: str
) -> None:
    key = AgentKey.generate()
    env = {"STEMEDB_URL": server.url, "STEMEDB_PRIVATE_KEY": key.seed_hex()}
    done = run_cli("assert", subject, "approved", "true", "--type", "boolean", env=env)
    assert done.returncode == 0, done.stderr
    assert key.agent_id in done.stdout
    again = run_cli("assert", subject, "approved", "true", "--type", "boolean", "--json", env=env)
    assert json.loads(again.stdout)["status"] in ("created", "exists")
    shown = run_cli("query", subject, "approved", "--json", env={"STEMEDB_URL": server.url})
    assert json.loads(shown.stdout)["claims"][0]["object"] == {"type": "boolean", "value": True}


def test_query_url_defaults_to_the_configs_api_bind(
    run_cli: RunCli, server: ServerProcess, tmp_path: Path, subject: str
) -> None:
    config = tmp_path / "api.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{server.port}"\n')
    key = AgentKey.generate()
    env = {"STEMEDB_PRIVATE_KEY": key.seed_hex()}
    assert run_cli("assert", subject, "risk", "x", "--config", str(config), env=env).returncode == 0
    shown = run_cli("query", subject, "risk", "--json", env={"STEMEDB_CONFIG": str(config)})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["claims"][0]["object"]["value"] == "x"


def test_query_filters_and_prefix(run_cli: RunCli, server: ServerProcess, subject: str) -> None:
    a, b = AgentKey.generate(), AgentKey.generate()
    for key, sub, value, cls in (
        (a, f"{subject}/x", "one", "clinical"),
        (b, f"{subject}/y", "two", "anecdotal"),
    ):
        done = run_cli(
            "assert",
            sub,
            "risk",
            value,
            "--source-class",
            cls,
            "--url",
            server.url,
            env={"STEMEDB_PRIVATE_KEY": key.seed_hex()},
        )
        assert done.returncode == 0, done.stderr
    grouped = run_cli("query", f"{subject}/", "risk", "--prefix", "--json", "--url", server.url)
    answer = json.loads(grouped.stdout)
    assert {g["subject"] for g in answer["results"]} == {f"{subject}/x", f"{subject}/y"}
    pretty = run_cli("query", f"{subject}/", "--prefix", "--url", server.url)
    assert pretty.returncode == 0 and f"{subject}/x" in pretty.stdout
    only_b = run_cli(
        "query",
        f"{subject}/y",
        "risk",
        "--agent-id",
        b.agent_id,
        "--source-class",
        "anecdotal",
        "--as-of",
        "4000000000",
        "--limit",
        "5",
        "--json",
        "--url",
        server.url,
    )
    assert [c["object"]["value"] for c in json.loads(only_b.stdout)["claims"]] == ["two"]


def test_errors_print_type_and_message_and_exit_non_zero(
    run_cli: RunCli, server: ServerProcess, subject: str
) -> None:
    env = {"STEMEDB_URL": server.url}
    no_key = run_cli("assert", subject, "risk", "x", env=env)
    assert no_key.returncode == 1
    assert no_key.stderr.startswith("Error: ValidationError: no agent key")

    key = {"STEMEDB_PRIVATE_KEY": AgentKey.generate().seed_hex(), **env}
    bad = run_cli("assert", subject, "risk", "x", "--confidence", "3", env=key)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ValidationError: confidence")
    assert "request_id=" in bad.stderr

    not_number = run_cli("assert", subject, "risk", "lots", "--type", "number", env=key)
    assert not_number.returncode == 2
    assert not_number.stderr.startswith("Error: ValidationError: 'lots' is not a finite number")

    lens = run_cli("query", subject, "risk", "--lens", "nope", env=env)
    assert lens.returncode == 1 and lens.stderr.startswith("Error: ValidationError: lens")

    down = run_cli("query", subject, "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and down.stderr.startswith("Error: NetworkError: ")
    assert "Traceback" not in down.stderr


def test_demo_url_loads_a_running_server_idempotently(
    run_cli: RunCli, server: ServerProcess
) -> None:
    first = run_cli("demo", "--url", server.url)
    assert first.returncode == 0, first.stderr
    again = run_cli("demo", "--url", server.url)
    assert again.returncode == 0, again.stderr
    assert "(0 new)" in again.stdout
    shown = run_cli("query", SUBJECT, PREDICATE, "--lens", "skeptic", "--json", "--url", server.url)
    answer = json.loads(shown.stdout)
    assert len({c["object"]["value"] for c in answer["claims"]}) >= 3
    assert answer["source_warnings"]  # the retracted preprint


def test_demo_url_against_no_server_fails_cleanly(run_cli: RunCli) -> None:
    done = run_cli("demo", "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: NetworkError: ")
