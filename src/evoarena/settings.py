"""Settings: package defaults, then a user TOML file, then ``EVOARENA_*`` environment variables.

Every model is frozen and rejects unknown keys; units are part of the names. The package defaults
in ``evoarena/config/default.toml`` are the single source of default values (the models have no
defaults of their own), so what a user sees in that file is exactly what runs.

Secrets are not settings: :class:`KalshiCredentials` reads them from the environment only.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from evoarena.errors import ConfigError

_STRICT = ConfigDict(frozen=True, extra="forbid")


class EvolutionSettings(BaseModel):
    """Population and genetic-operator parameters."""

    model_config = _STRICT

    population_size: int = Field(ge=2)
    initial_bankroll_usd: Decimal = Field(gt=0)
    elite_count: int = Field(ge=0)
    tournament_size: int = Field(ge=1)
    crossover_rate: float = Field(ge=0, le=1)
    mutation_rate: float = Field(ge=0, le=1)
    mutation_sigma: float = Field(ge=0)
    immigrant_count: int = Field(ge=0)
    min_settled_trades: int = Field(ge=0)
    inactive_penalty_roi_pct: float
    hall_of_fame_size: int = Field(ge=1)
    hall_of_fame_top_per_generation: int = Field(ge=1)
    fitness: Literal["roi", "stake_lcb"]
    luck_simulations: int = Field(ge=0)
    luck_alpha: float = Field(gt=0, lt=1)
    seed: int

    @model_validator(mode="after")
    def _fits_population(self) -> EvolutionSettings:
        if self.elite_count + self.immigrant_count > self.population_size:
            msg = "elite_count + immigrant_count must not exceed population_size"
            raise ValueError(msg)
        return self


class TradingSettings(BaseModel):
    """Generation timing, in seconds and ticks."""

    model_config = _STRICT

    generation_duration_secs: int = Field(gt=0)
    tick_interval_secs: int = Field(gt=0)
    progress_log_every_ticks: int = Field(gt=0)
    checkpoint_every_ticks: int = Field(gt=0)
    settlement_check_every_ticks: int = Field(gt=0)
    settlement_wait_secs: int = Field(ge=0)
    settlement_poll_secs: int = Field(gt=0)
    settlement_wait_ends_early: bool = True
    market_close_window_secs: int = Field(gt=0)
    settlement_margin_secs: int = Field(ge=0)
    deadline_policy: Literal["loss", "last_bid"]
    price_history_ticks: int = Field(ge=2, le=3000)  # engine.book.MAX_HISTORY_LEN

    @model_validator(mode="after")
    def _at_least_one_tick(self) -> TradingSettings:
        if self.generation_duration_secs < self.tick_interval_secs:
            msg = "generation_duration_secs must be at least tick_interval_secs"
            raise ValueError(msg)
        return self


class StateSettings(BaseModel):
    """Where generation files, checkpoints and the hall of fame live."""

    model_config = _STRICT

    dir: Path


class KalshiSettings(BaseModel):
    """Kalshi endpoints, rate limits and connection behaviour (no secrets)."""

    model_config = _STRICT

    demo: bool
    rest_url: str
    ws_url: str
    demo_rest_url: str
    demo_ws_url: str
    read_requests_per_sec: float = Field(gt=0)
    read_burst: int = Field(ge=1)
    request_timeout_secs: float = Field(gt=0)
    max_retries: int = Field(ge=0)
    retry_initial_delay_secs: float = Field(ge=0)
    retry_max_delay_secs: float = Field(ge=0)
    discovery_refresh_secs: int = Field(gt=0)
    orderbook_tickers_per_subscription: int = Field(ge=1)
    ready_timeout_secs: float = Field(gt=0)
    reconnect_initial_delay_secs: float = Field(ge=0)
    reconnect_max_delay_secs: float = Field(ge=0)
    healthy_session_secs: float = Field(ge=0)
    ping_interval_secs: float = Field(gt=0)
    ping_timeout_secs: float = Field(gt=0)
    heartbeat_log_secs: float = Field(gt=0)

    @property
    def effective_rest_url(self) -> str:
        """The REST base URL in use (demo hosts when ``demo = true``)."""
        return self.demo_rest_url if self.demo else self.rest_url

    @property
    def effective_ws_url(self) -> str:
        """The WebSocket URL in use (demo hosts when ``demo = true``)."""
        return self.demo_ws_url if self.demo else self.ws_url


class RecordSettings(BaseModel):
    """The recorder: where to write, and when to rotate."""

    model_config = _STRICT

    path: str
    rotate_max_bytes: int = Field(gt=0)
    rotate_every_secs: int = Field(gt=0)
    flush_every_secs: float = Field(gt=0, le=1.0)
    max_time_jump_secs: int = Field(gt=0)
    """Reading a recording: a line whose ``t_ms`` jumps further past the previous line's is a
    bad line (a far-future time would otherwise make a replay run away)."""


class LogSettings(BaseModel):
    """Log level and format."""

    model_config = _STRICT

    level: Literal["debug", "info", "warning", "error"]
    format: Literal["auto", "json", "console"]


class MetricsSettings(BaseModel):
    """The Prometheus ``/metrics`` and ``/healthz`` endpoint of the live service."""

    model_config = _STRICT

    enabled: bool
    host: str
    port: int = Field(ge=0, le=65535)
    feed_stale_secs: float = Field(gt=0)
    tick_late_secs: float = Field(gt=0)


class NotifySettings(BaseModel):
    """A webhook that gets a JSON summary at each generation's end and on a fatal error."""

    model_config = _STRICT

    webhook_url: str
    timeout_secs: float = Field(gt=0)
    retries: int = Field(ge=0)
    retry_delay_secs: float = Field(ge=0)

    @model_validator(mode="after")
    def _http_url(self) -> NotifySettings:
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            msg = "webhook_url must start with http:// or https:// (or be empty: no webhook)"
            raise ValueError(msg)
        return self


class RetentionSettings(BaseModel):
    """How long the live service keeps old checkpoints and recording segments (0 = forever)."""

    model_config = _STRICT

    checkpoints_keep_days: float = Field(ge=0)
    recordings_keep_days: float = Field(ge=0)


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="EVOARENA_",
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    evolution: EvolutionSettings
    trading: TradingSettings
    state: StateSettings
    kalshi: KalshiSettings
    record: RecordSettings
    log: LogSettings
    metrics: MetricsSettings
    notify: NotifySettings
    retention: RetentionSettings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the (already merged) TOML layers passed as init values."""
        return (env_settings, init_settings)


def decision_settings(settings: Settings) -> dict[str, Any]:
    """The settings a run's trading decisions depend on, as JSON (live recordings carry them)."""
    return {
        "evolution": settings.evolution.model_dump(mode="json"),
        "trading": settings.trading.model_dump(mode="json"),
    }


def default_config_text() -> str:
    """The packaged ``default.toml``."""
    return resources.files("evoarena").joinpath("config/default.toml").read_text("utf-8")


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = f"{origin}: not valid TOML: {e}"
        raise ConfigError(msg) from e


def _merge(base: dict[str, Any], top: dict[str, Any], origin: str, path: str = "") -> None:
    for key, value in top.items():
        dotted = f"{path}{key}"
        if key not in base:
            msg = f"{origin}: unknown key '{dotted}'"
            if key.lower().startswith("kalshi_") or "private_key" in key or "api_key" in key:
                msg += " (secrets come from the environment, never from a config file)"
            raise ConfigError(msg)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                msg = f"{origin}: '{dotted}' must be a table"
                raise ConfigError(msg)
            _merge(base[key], value, origin, f"{dotted}.")
        else:
            base[key] = value


def _format_validation_error(e: ValidationError, origin: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{origin}: {key}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Layer the package defaults, ``config_path`` (if any), ``overrides`` and the environment.

    ``overrides`` is a nested dict applied after the file (the CLI uses it for flags such as
    ``--state-dir``). Raises :class:`ConfigError` naming the file and key for any problem.
    """
    data = _read_toml(default_config_text(), "default.toml")
    origin = "default.toml"
    if config_path is not None:
        try:
            text = config_path.read_text("utf-8")
        except OSError as e:
            msg = f"cannot read config file {config_path}: {e.strerror}"
            raise ConfigError(msg) from e
        _merge(data, _read_toml(text, str(config_path)), str(config_path))
        origin = str(config_path)
    env_keys = sorted(k for k in os.environ if k.upper().startswith("EVOARENA_"))
    if env_keys:
        origin += " + environment (" + ", ".join(env_keys) + ")"
    try:
        settings = Settings(**data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, origin)) from e
    return _apply_overrides(settings, overrides) if overrides else settings


def _apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Command-line values win over the environment, the file and the defaults."""
    _merge(settings.model_dump(), overrides, "command line")  # unknown sections/keys are refused
    update: dict[str, Any] = {}
    for section, values in overrides.items():
        current = getattr(settings, section)
        try:
            update[section] = type(current).model_validate({**current.model_dump(), **values})
        except ValidationError as e:
            raise ConfigError(_format_validation_error(e, "command line")) from e
    return settings.model_copy(update=update)


class KalshiCredentials(BaseSettings):
    """Kalshi API credentials, from the environment only (never from a TOML file or logs)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    api_key_id: SecretStr | None = Field(default=None, alias="KALSHI_API_KEY_ID")
    private_key_path: Path | None = Field(default=None, alias="KALSHI_PRIVATE_KEY_PATH")
    private_key_pem: SecretStr | None = Field(default=None, alias="KALSHI_PRIVATE_KEY")
