"""Configuration: TOML file + ``STEMEDB_<SECTION>_<KEY>`` environment overrides (API.md).

Lookup order for the file: ``--config``, ``$STEMEDB_CONFIG``, ``/etc/stemedb/api.toml``
if present, else built-in defaults (an embedded single node under ``./data``). Unknown
keys and wrong types stop start-up with a message that names the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import msgspec

from stemedb.errors import ValidationError
from stemedb.lens.config import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_LENS,
    DEFAULT_SKEPTIC_AGREED_SHARE,
    DEFAULT_TIER_WEIGHTS,
)
from stemedb.wal.log import SEGMENT_SIZE_BYTES

DEFAULT_CONFIG_PATH: Final = Path("/etc/stemedb/api.toml")
ENV_PREFIX: Final = "STEMEDB_"
# Variables of the SDK, the CLI and the tools that share the prefix but are not
# configuration keys (STEMEDB_API_KEY would otherwise read as the unknown key api.key).
NOT_CONFIGURATION: Final = frozenset(
    {
        "STEMEDB_CONFIG",
        "STEMEDB_URL",
        "STEMEDB_API_KEY",
        "STEMEDB_PRIVATE_KEY",
        "STEMEDB_KEY_FILE",
        "STEMEDB_S3_ENDPOINT_URL",
    }
)
SECRET_KEYS: Final = frozenset({"postgres_dsn", "root_api_key"})


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ApiConfig(_Section):
    bind: str = "127.0.0.1:18180"
    workers: int = 1
    respawn_limit: int = 5  # crashed writer/worker processes replaced per window
    respawn_window_seconds: float = 60.0
    request_timeout_seconds: float = 30.0
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch: int = 1000
    slow_query_ms: float = 100.0
    max_query_limit: int = 1000
    feed_max_wait_seconds: float = 30.0
    slow_query_log_entries: int = 1000
    metrics_top_agents: int = 100
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    # protected mode (api.guard.protected): keys off => loopback only, unless this is set
    allow_unauthenticated_network: bool = False
    # Host names accepted besides IP literals, localhost and the bind host (DNS rebinding)
    allowed_hosts: list[str] = msgspec.field(default_factory=list)
    # slow clients (api.http.connections): headers within this, at most this many per process
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 4096


class McpConfig(_Section):
    enabled: bool = True  # /mcp on the API's port (docs/reference/mcp.md)


class UiConfig(_Section):
    """The dashboard at ``/ui`` (docs/reference/ui.md); false removes its routes."""

    enabled: bool = True
    session_minutes: Annotated[float, msgspec.Meta(gt=0)] = 480.0
    # The disagreement board's categories (docs/reference/ui.md "Disagreement board").
    active_conflict: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.4
    authoritative_max_tier: Annotated[int, msgspec.Meta(ge=0, le=5)] = 2
    emerging_tier: Annotated[int, msgspec.Meta(ge=0, le=5)] = 5
    emerging_min_claims: Annotated[int, msgspec.Meta(ge=1)] = 3
    resolved_conflict: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.15
    board_max_questions: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500


class StorageConfig(_Section):
    backend: Literal["local", "postgres"] = "local"
    data_dir: str = "./data"
    postgres_dsn: str = ""
    cache_size_mb: int = 64
    view_refresh: bool = True
    busy_timeout_ms: int = 5000
    # cluster mode (backend = "postgres"), docs/design/cluster.md
    auto_migrate: bool = False
    read_from: Literal["primary", "replica"] = "primary"
    pool_size: Annotated[int, msgspec.Meta(ge=2, le=100)] = 8
    min_lsn_wait_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0


class WalConfig(_Section):
    dir: str = ""
    segment_size_bytes: int = SEGMENT_SIZE_BYTES
    group_commit_max_batch: int = 1024
    group_commit_max_delay_us: int = 200
    fsync: bool = True
    writer_process: bool = True


class AuthConfig(_Section):
    enabled: bool = False
    require_for_reads: bool = False
    signature_max_skew_seconds: int = 300
    root_api_key: str = ""


class RateLimitConfig(_Section):
    enabled: bool = False
    storage: str = "memory://"
    default_per_minute: int = 6000
    endpoints: dict[str, int] = msgspec.field(default_factory=dict)
    window_seconds: int = 60


class QuotaConfig(_Section):
    enabled: bool = False
    tokens_per_hour: int = 10000
    window_seconds: int = 3600


class ResilienceConfig(_Section):
    enable_circuit_breaker: bool = True
    failure_threshold: int = 5
    timeout_ms: int = 5000
    reset_timeout_ms: int = 30000


class FallbackConfig(_Section):
    enable_cache_fallback: bool = True
    max_stale_seconds: float = 300.0
    max_entries: int = 10000


class SloConfig(_Section):
    target_availability: float = 0.999
    error_budget_burn_rate_alert: float = 0.1


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class TlsConfig(_Section):
    cert_file: str = ""
    key_file: str = ""


class AuditConfig(_Section):
    retention_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    prune_interval_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0


class BackupConfig(_Section):
    dir: str = ""
    s3_url: str = ""
    retention_days: int = 14


class ArchiveConfig(_Section):
    enabled: bool = False
    s3_url: str = ""
    interval_seconds: int = 60
    keep_local: bool = False


class DrConfig(_Section):
    rto_target_seconds: float = 900.0
    rpo_target_seconds: float = 300.0
    workdir: str = ""


class ClusterConfig(_Section):
    """``[cluster]``: this node in the node registry (cluster mode, ``storage.backend =
    "postgres"``); read by ``stemedb.cluster`` and the engine's commit watcher."""

    node_id: str = ""
    advertise_url: str = ""
    heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    poll_ms: Annotated[int, msgspec.Meta(gt=0)] = 1000
    patroni_url: str = ""
    max_replication_lag_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0


class DefenceConfig(_Section):
    """``[defence]``: the screening step of the write path (quarantine, ADR 0023) and
    admission of unknown agents; read by ``engine.screening`` (docs/design/defence.md)."""

    quarantine: bool = True
    near_duplicate_window_seconds: Annotated[int, msgspec.Meta(gt=0)] = 3600
    near_duplicate_max_repeats: Annotated[int, msgspec.Meta(ge=0)] = 2
    near_duplicate_similarity: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    untrusted_confidence_min: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.95
    untrusted_min_outcomes: Annotated[int, msgspec.Meta(ge=0)] = 3
    established_min_agents: Annotated[int, msgspec.Meta(ge=1)] = 2
    fresh_key_max_claims: Annotated[int, msgspec.Meta(ge=0)] = 5
    fresh_key_burst_agents: Annotated[int, msgspec.Meta(ge=2)] = 5
    fresh_key_burst_window_seconds: Annotated[int, msgspec.Meta(gt=0)] = 3600
    admission: Literal["open"] = "open"


def _decaying_half_lives() -> dict[str, float]:
    """The lens half-lives of the classes that decay (``regulatory`` never does)."""
    return {name: days for name, days in DEFAULT_HALF_LIFE_DAYS.items() if days is not None}


class LensSettings(_Section):
    """The ``[lens]`` section; its defaults are the lens package's (``stemedb.lens.config``)."""

    default: str = DEFAULT_LENS
    tier_weights: list[float] = msgspec.field(default_factory=lambda: list(DEFAULT_TIER_WEIGHTS))
    half_life_days: dict[str, float] = msgspec.field(default_factory=_decaying_half_lives)
    skeptic_agreed_share: float = DEFAULT_SKEPTIC_AGREED_SHARE


class Config(_Section):
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    mcp: McpConfig = msgspec.field(default_factory=McpConfig)
    ui: UiConfig = msgspec.field(default_factory=UiConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    wal: WalConfig = msgspec.field(default_factory=WalConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    quota: QuotaConfig = msgspec.field(default_factory=QuotaConfig)
    resilience: ResilienceConfig = msgspec.field(default_factory=ResilienceConfig)
    fallback: FallbackConfig = msgspec.field(default_factory=FallbackConfig)
    slo: SloConfig = msgspec.field(default_factory=SloConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    backup: BackupConfig = msgspec.field(default_factory=BackupConfig)
    archive: ArchiveConfig = msgspec.field(default_factory=ArchiveConfig)
    dr: DrConfig = msgspec.field(default_factory=DrConfig)
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)
    lens: LensSettings = msgspec.field(default_factory=LensSettings)
    defence: DefenceConfig = msgspec.field(default_factory=DefenceConfig)

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)

    @property
    def wal_dir(self) -> Path:
        return Path(self.wal.dir) if self.wal.dir else self.data_dir / "wal"


SHORTCUTS: Final = {
    "STEMEDB_BIND_ADDR": ("api", "bind"),
    "STEMEDB_WAL_DIR": ("wal", "dir"),
    "STEMEDB_DB_DIR": ("storage", "data_dir"),
    "STEMEDB_AUTH_ENABLED": ("auth", "enabled"),
    "STEMEDB_ROOT_API_KEY": ("auth", "root_api_key"),
    "STEMEDB_ALLOWED_ORIGINS": ("api", "allowed_origins"),
}


def _sections() -> dict[str, type[_Section]]:
    return {f.name: f.type for f in msgspec.structs.fields(Config)}


def _env_value(raw: str, name: str, section: str, key: str) -> Any:
    field_type = next(f.type for f in msgspec.structs.fields(_sections()[section]) if f.name == key)
    if get_origin(field_type) is Annotated:  # a bounded number: the bound is checked later
        field_type = get_args(field_type)[0]
    if field_type is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValidationError(name, "must be true or false", f"{name}={raw!r}: expected a boolean")
    if field_type in (int, float):
        try:
            return field_type(raw)
        except ValueError:
            raise ValidationError(
                name, f"must be {field_type.__name__}", f"{name}={raw!r}: expected a number"
            ) from None
    if field_type is str or getattr(field_type, "__origin__", None) is Literal:
        return raw
    if field_type == list[str] and not raw.lstrip().startswith("["):
        return [item.strip() for item in raw.split(",") if item.strip()]  # "a, b" lists
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValidationError(name, "must be JSON", f"{name}: expected a JSON value") from None


def env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``STEMEDB_<SECTION>_<KEY>`` and the shortcut variables as a nested dict."""
    sections = _sections()
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_CONFIGURATION:
            continue
        target = SHORTCUTS.get(name)
        if target is None:
            rest = name[len(ENV_PREFIX) :].lower()
            target = next(
                (
                    (section, rest[len(section) + 1 :])
                    for section in sorted(sections, key=len, reverse=True)
                    if rest.startswith(section + "_")
                ),
                None,
            )
            if target is None:
                continue  # not a configuration variable (e.g. STEMEDB_URL for the SDK)
            keys = {f.name for f in msgspec.structs.fields(sections[target[0]])}
            if target[1] not in keys:
                raise ValidationError(
                    name, "unknown configuration key", f"unknown configuration variable {name}"
                )
        section, key = target
        out.setdefault(section, {})[key] = _env_value(raw, name, section, key)
    return out


def _merge(base: dict[str, Any], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        merged.setdefault(section, {}).update(values)
    return merged


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Object contains unknown field `bnd` - at `$.api`".
    text = str(exc)
    return text.replace("$.", "").replace(" - at ", " in ")


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """The effective configuration; raises ValidationError naming a bad key."""
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get("STEMEDB_CONFIG"):
        path = Path(env["STEMEDB_CONFIG"])
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValidationError(
                "config", "file not found", f"config file {path} not found"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError("config", "invalid TOML", f"{path}: {exc}") from None
    merged = _merge(raw, env_overrides(env))
    try:
        return msgspec.convert(merged, Config)
    except msgspec.ValidationError as exc:
        raise ValidationError(
            "config", "invalid key or value", f"configuration: {_explain(exc)}"
        ) from None


def effective(config: Config, *, mask_secrets: bool = True) -> dict[str, Any]:
    """The configuration as a plain dict, secrets masked (for ``config show``)."""
    data: dict[str, Any] = msgspec.to_builtins(config)
    if mask_secrets:
        for section in data.values():
            for key in list(section):
                if key in SECRET_KEYS and section[key]:
                    section[key] = "********"
    return data
