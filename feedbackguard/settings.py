"""Deployment settings, from `FEEDBACKGUARD_*` env vars, Flask config and `config/`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from feedbackguard.defaults import config_path
from feedbackguard.events import (
    DEFAULT_ACCOUNT_EPOCH,
    DEFAULT_ACCOUNT_FUTURE_SKEW_S,
    AccountDates,
)

PREFIX = "FEEDBACKGUARD_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
AnalysisMode = Literal["incremental", "full", "off"]
# FEEDBACKGUARD_* names read outside `Settings`: the test suite's servers and screenshot
# folder, and the capture extension's Flask config key.
OTHER_NAMES = frozenset(
    {
        "FEEDBACKGUARD_TEST_REDIS_URL",
        "FEEDBACKGUARD_TEST_DATABASE_URL",
        "FEEDBACKGUARD_TEST_SCREENSHOTS",
        "FEEDBACKGUARD_ROUTES",
    }
)


class UnknownSettingError(ValueError):
    """A `FEEDBACKGUARD_*` environment variable that names no setting (a typo would
    otherwise be ignored, and its default used without a word)."""


class Settings(BaseSettings):
    """Where things live and how capture behaves; policy is separate (`Policy`)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    redis_url: str | None = None  # `redis+cluster://host:port` names a Redis Cluster
    rq_redis_url: str | None = None  # RQ's job queues; default: redis_url (not a cluster)
    store_url: str | None = None
    home: Path = Path(".feedbackguard")
    redis_timeout_ms: float = Field(50.0, gt=0)
    trusted_proxies: int = Field(0, ge=0)
    invalid_feedback: Literal["reject", "pass"] = "reject"
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    max_json_depth: int = Field(32, ge=2, le=512)
    # Plausible account creation dates (see config/settings.toml).
    account_epoch: datetime = DEFAULT_ACCOUNT_EPOCH
    account_future_skew_s: float = Field(DEFAULT_ACCOUNT_FUTURE_SKEW_S, ge=0)
    spool_path: Path | None = None
    spool_max_bytes: int = Field(256 * 1024 * 1024, gt=0)
    spool_retry_s: float = Field(5.0, gt=0)
    inbox_maxlen: int = Field(1_000_000, gt=0)
    inbox_overflow: Literal["spool", "reject"] = "spool"
    signing_key: SecretStr | None = None
    # Capture (see config/settings.toml for what each means).
    capture_mode: Literal["sync", "buffered"] = "sync"
    buffer_flush_ms: float = Field(5.0, gt=0)
    buffer_max_events: int = Field(1000, gt=0)
    breaker_cooldown_s: float = Field(1.0, gt=0)
    device_id_header: str = "X-Device-Id"
    device_id_cookie: str = "fg_device"
    spool_replay_batch: int = Field(500, gt=0)
    # Workers (see config/settings.toml for what each means).
    batch_size: int = Field(2000, gt=0, le=10_000)
    claim_idle_ms: int = Field(30_000, gt=0)
    read_block_ms: int = Field(1000, ge=0)
    ingest_budget_s: float = Field(10.0, gt=0)
    release_batch: int = Field(2000, gt=0)
    pump_interval_s: float = Field(0.5, gt=0)
    policy_cache_s: float = Field(2.0, ge=0)
    clock: Literal["wall", "events"] = "wall"
    # Periodic analysis (see config/settings.toml): "incremental" works on what changed
    # since the last run, "full" recomputes the whole window every run, "off" runs none.
    analysis: AnalysisMode = "incremental"
    # Review queue (see feedbackguard/review/queue.py).
    review_lease_s: float = Field(300.0, gt=0)  # how long a claimed item stays a moderator's
    review_undo_s: float = Field(300.0, ge=0)  # how long a moderator's decision can be undone
    review_sync_s: float = Field(5.0, gt=0)  # lazy index catch-up at least this often
    review_page_size: int = Field(50, gt=0, le=1000)
    review_scan_budget: int = Field(20_000, gt=0)  # ids examined per filtered page at most
    review_cluster_cache_s: float = Field(5.0, gt=0)  # cluster filter's cached union
    # Where the product shows an item, e.g. "https://product.example/posts/{item}"
    # (see config/settings.toml); "" shows no link.
    review_item_url: str = Field("", max_length=2000, pattern=r"^(https?://[^\s]*\{item\}[^\s]*)?$")
    # Web server and admin API (see config/settings.toml).
    secret_key: SecretStr | None = None  # Flask session key; generated under home if unset
    session_cookie_secure: bool = False  # True behind HTTPS: the session cookie is HTTPS-only
    review_prefix: str = "/review"
    admin_prefix: str = "/api"
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8700, ge=0, le=65535)
    serve_threads: int = Field(8, gt=0)  # requests served at once (waitress threads)
    serve_timeout_s: int = Field(120, gt=0)  # an idle or stalled connection is closed after
    log_level: LogLevel = "INFO"  # `worker` and `serve` log at this level (JSON lines on stderr)
    auth_fail_limit: int = Field(10, gt=0)  # failed authentications per client per window
    auth_fail_window_s: int = Field(60, gt=0)  # ... then 429 until the window ends
    session_lifetime_s: int = Field(12 * 3600, gt=0)  # a review UI login lasts this long
    metrics_require_key: bool = False  # True: /metrics needs a viewer key (401 otherwise)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        check_environment(os.environ, settings_cls.model_fields)
        defaults = TomlConfigSettingsSource(settings_cls, toml_file=config_path("settings.toml"))
        return (init_settings, env_settings, defaults)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Settings:
        """Settings from a Flask-style config: keys `FEEDBACKGUARD_<FIELD>`."""
        values = {
            key[len(PREFIX) :].lower(): value
            for key, value in config.items()
            if key.startswith(PREFIX) and key[len(PREFIX) :].lower() in cls.model_fields
        }
        return cls(**values)

    def account_dates(self) -> AccountDates:
        """The range capture and replay accept for `account_created_at`."""
        return AccountDates(epoch=self.account_epoch, future_skew_s=self.account_future_skew_s)

    @property
    def resolved_spool_path(self) -> Path:
        return self.spool_path or self.home / "spool.jsonl"


def known_names(fields: Mapping[str, object]) -> list[str]:
    """Every `FEEDBACKGUARD_*` name feedbackguard reads: one per setting, and the others."""
    return sorted({PREFIX + name.upper() for name in fields} | OTHER_NAMES)


def check_environment(environ: Mapping[str, str], fields: Mapping[str, object]) -> None:
    """`UnknownSettingError` naming the first unknown `FEEDBACKGUARD_*` variable in
    `environ`, and the known name closest to it."""
    known = known_names(fields)
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; see config/settings.toml"
        raise UnknownSettingError(f"unknown setting {name} in the environment{hint}")
