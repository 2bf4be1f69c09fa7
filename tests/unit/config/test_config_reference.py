"""docs/reference/config.md and the code must list the same keys and defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from stemedb.config import Config, effective, load_config
from stemedb.errors import ValidationError

DOC = Path(__file__).parents[3] / "docs" / "reference" / "config.md"
ROW = re.compile(r"^\| `([a-z0-9_]+)\.([a-z0-9_]+)` \| `(.*?)` \|", re.MULTILINE)


def _code_defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for section in msgspec.structs.fields(Config):
        for field in msgspec.structs.fields(section.type):
            default = field.default
            if default is msgspec.NODEFAULT:
                default = field.default_factory()
            out[f"{section.name}.{field.name}"] = default
    return out


def test_reference_page_lists_every_key_with_its_default() -> None:
    documented = {f"{s}.{k}": json.loads(v) for s, k, v in ROW.findall(DOC.read_text())}
    assert documented == _code_defaults()


def test_unknown_key_in_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text("[wal]\nfsyncc = true\n")
    with pytest.raises(ValidationError, match="fsyncc"):
        load_config(path, environ={})


def test_wrong_type_in_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text("[wal]\nsegment_size_bytes = 'big'\n")
    with pytest.raises(ValidationError, match="segment_size_bytes"):
        load_config(path, environ={})


def test_unknown_environment_variable_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="STEMEDB_WAL_FSYNCC"):
        load_config(None, environ={"STEMEDB_WAL_FSYNCC": "1"})


def test_environment_overrides_file_and_shortcuts_apply(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text("[api]\nbind = '127.0.0.1:1'\n[wal]\nfsync = true\n")
    config = load_config(
        path,
        environ={
            "STEMEDB_WAL_FSYNC": "false",
            "STEMEDB_BIND_ADDR": "127.0.0.1:2",
            "STEMEDB_DB_DIR": "/x",
        },
    )
    assert config.wal.fsync is False
    assert config.api.bind == "127.0.0.1:2"
    assert config.storage.data_dir == "/x"


def test_bad_boolean_in_environment_is_refused() -> None:
    with pytest.raises(ValidationError, match="STEMEDB_WAL_FSYNC"):
        load_config(None, environ={"STEMEDB_WAL_FSYNC": "maybe"})


def test_config_show_masks_secrets() -> None:
    config = load_config(None, environ={"STEMEDB_ROOT_API_KEY": "stm_secret"})
    shown = json.dumps(effective(config))
    assert "stm_secret" not in shown
    assert effective(config)["auth"]["root_api_key"] == "********"


def test_lens_section_becomes_lens_constants() -> None:
    from stemedb.query.service import lens_config_from

    config = load_config(None, environ={"STEMEDB_LENS_SKEPTIC_AGREED_SHARE": "0.7"})
    lens = lens_config_from(config.lens)
    assert lens.half_life_days["regulatory"] is None
    assert lens.half_life_days["anecdotal"] == 30.0
    assert lens.tier_weights == (1.0, 0.8, 0.6, 0.4, 0.25, 0.1)
    assert lens.skeptic_agreed_share == 0.7


def test_unknown_default_lens_is_refused() -> None:
    from stemedb.query.service import lens_config_from

    config = load_config(None, environ={"STEMEDB_LENS_DEFAULT": "oracle"})
    with pytest.raises(ValidationError, match=r"lens\.default"):
        lens_config_from(config.lens)


def test_sdk_and_tool_variables_are_not_read_as_configuration() -> None:
    environ = {
        "STEMEDB_API_KEY": "stm_client_key",
        "STEMEDB_URL": "http://127.0.0.1:1",
        "STEMEDB_KEY_FILE": "/tmp/agent.key",
        "STEMEDB_PRIVATE_KEY": "00" * 32,
    }
    assert load_config(None, environ=environ) == load_config(None, environ={})
