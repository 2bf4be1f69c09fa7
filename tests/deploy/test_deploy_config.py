"""deploy/api.toml and deploy/.env.example cannot drift from the code.

- api.toml loads as it is, and with every commented-out ``# key = value`` line
  uncommented; every key of every ``stemedb.config`` section appears, and each
  commented-out value is the key's real default (so the file documents defaults truly).
- .env.example names every environment variable the code reads (found by grepping
  ``src/`` for ``"STEMEDB_…"`` / ``"AWS_…"`` string literals and the shortcut table), and
  every ``STEMEDB_…`` line in it is accepted by the configuration loader.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec
from deploy_helpers import DEPLOY, ROOT

from stemedb.config import SHORTCUTS, Config, env_overrides, load_config

API_TOML = DEPLOY / "api.toml"
ENV_EXAMPLE = DEPLOY / ".env.example"
COMMENTED_KEY = re.compile(r"^#\s?((?:[a-z0-9_]+|\"[^\"]+\")\s*=.*)$")
ENV_LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")


def uncommented(text: str) -> str:
    return "\n".join(
        m.group(1) if (m := COMMENTED_KEY.match(line)) else line for line in text.splitlines()
    )


def commented_values(text: str) -> dict[tuple[str, str], Any]:
    """(section, key) → value of each commented-out key line."""
    out: dict[tuple[str, str], Any] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif m := COMMENTED_KEY.match(line):
            key, value = next(iter(tomllib.loads(m.group(1)).items()))
            out[(section, key)] = value
    return out


def config_keys() -> set[tuple[str, str]]:
    return {
        (section.name, key.name)
        for section in msgspec.structs.fields(Config)
        for key in msgspec.structs.fields(section.type)
    }


def test_reference_config_loads_as_shipped() -> None:
    config = load_config(API_TOML, environ={})
    assert config.storage.data_dir == "/var/lib/stemedb"


def test_reference_config_loads_with_every_key_uncommented(tmp_path: Path) -> None:
    full = tmp_path / "api.toml"
    full.write_text(uncommented(API_TOML.read_text()))
    assert load_config(full, environ={}) == load_config(API_TOML, environ={})


def test_every_config_key_is_in_the_reference_config() -> None:
    parsed = tomllib.loads(uncommented(API_TOML.read_text()))
    present = {(section, key) for section, keys in parsed.items() for key in keys}
    missing = sorted(config_keys() - present)
    assert not missing, f"keys missing from deploy/api.toml: {missing}"


def test_commented_values_are_the_real_defaults() -> None:
    defaults = msgspec.to_builtins(Config())
    documented = commented_values(API_TOML.read_text())
    for (section, key), value in documented.items():
        top = section.split(".")[0]
        if "." in section:  # [rate_limit.endpoints]: an example entry, not a default
            continue
        assert value == defaults[top][key], f"{section}.{key}: documented {value!r}"
    wrong = sorted(k for k in documented if "." not in k[0] and k not in config_keys())
    assert not wrong, f"unknown keys in deploy/api.toml: {wrong}"


def env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := ENV_LINE.match(line):
            out[m.group(1)] = m.group(2)
    return out


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set(SHORTCUTS)
    for path in (ROOT / "src").rglob("*.py"):
        names |= set(re.findall(r"[\"'`]((?:STEMEDB|AWS)_[A-Z0-9_]+)[\"'`]", path.read_text()))
    # the job wrapper's own variable
    names |= set(
        re.findall(
            r"\$\{?(STEMEDB_[A-Z0-9_]+)", (DEPLOY / "bin" / "stemedb-job-metrics").read_text()
        )
    )
    return names


def test_env_example_lists_every_variable_the_code_reads() -> None:
    missing = sorted(variables_read_by_the_code() - set(env_example()))
    assert not missing, f"variables missing from deploy/.env.example: {missing}"


def test_env_example_explains_the_section_key_pattern() -> None:
    text = ENV_EXAMPLE.read_text()
    assert "STEMEDB_<SECTION>_<KEY>" in text
    for name in (
        "STEMEDB_ROOT_API_KEY",
        "STEMEDB_ALLOWED_ORIGINS",
        "STEMEDB_PRIVATE_KEY",
        "STEMEDB_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert name in env_example(), name


def test_every_server_variable_of_the_env_example_is_accepted() -> None:
    environ = env_example()
    overrides = env_overrides(environ)
    assert overrides["api"]["max_body_bytes"] == 4194304
    assert overrides["rate_limit"]["endpoints"] == {"/v1/assert": 6000}
    config = load_config(API_TOML, environ=environ)
    assert config.archive.enabled is True and config.auth.enabled is True


def test_client_variables_do_not_stop_the_server() -> None:
    """The SDK's variables may share the server's environment (STEMEDB_API_KEY once
    read as a key "key" of [api] and stopped start-up)."""
    load_config(API_TOML, environ=env_example())
