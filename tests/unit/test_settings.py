"""Settings: packaged defaults, --config layering, environment, command line, clear errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from evoarena.errors import ConfigError
from evoarena.settings import KalshiCredentials, load_settings

pytestmark = pytest.mark.timeout(10)


def test_defaults_are_the_seed_constants() -> None:
    """The packaged default.toml carries the seeds' numbers, with units in the names."""
    s = load_settings()
    ev, tr = s.evolution, s.trading
    assert (ev.population_size, ev.initial_bankroll_usd) == (100, Decimal(100))
    assert (tr.generation_duration_secs, tr.tick_interval_secs) == (86_400, 30)
    assert (tr.progress_log_every_ticks, tr.checkpoint_every_ticks) == (30, 60)
    assert tr.settlement_check_every_ticks == 120
    assert (tr.settlement_wait_secs, tr.settlement_poll_secs) == (7_200, 60)
    assert (tr.market_close_window_secs, tr.price_history_ticks) == (86_400, 120)
    assert (ev.elite_count, ev.tournament_size, ev.immigrant_count) == (5, 7, 5)
    assert (ev.crossover_rate, ev.mutation_rate, ev.mutation_sigma) == (0.7, 0.15, 0.10)
    assert (ev.min_settled_trades, ev.inactive_penalty_roi_pct) == (5, -100.0)
    assert s.state.dir == Path("state")


def test_config_file_layers_over_defaults(tmp_path: Path) -> None:
    """Only the keys in the file change."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[trading]\ntick_interval_secs = 15\n", encoding="utf-8")
    s = load_settings(cfg)
    assert s.trading.tick_interval_secs == 15
    assert s.trading.generation_duration_secs == 86_400


def test_precedence_defaults_file_env_then_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment beats the file; command-line flags beat the environment."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[state]\ndir = "from-file"\n[evolution]\nseed = 1\n', encoding="utf-8")
    monkeypatch.setenv("EVOARENA_STATE__DIR", "from-env")
    monkeypatch.setenv("EVOARENA_EVOLUTION__SEED", "2")
    s = load_settings(cfg)
    assert s.state.dir == Path("from-env")
    assert s.evolution.seed == 2
    s = load_settings(cfg, {"state": {"dir": "from-flag"}, "evolution": {"seed": 3}})
    assert s.state.dir == Path("from-flag")
    assert s.evolution.seed == 3
    assert s.evolution.population_size == 100


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    """A typo is refused with the file and the dotted key."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[trading]\ntick_interval_sec = 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml: unknown key 'trading\.tick_interval_sec'"):
        load_settings(cfg)


def test_wrong_type_and_range_are_named(tmp_path: Path) -> None:
    """Validation errors name the key and what was wrong."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[evolution]\npopulation_size = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"evolution\.population_size"):
        load_settings(cfg)


def test_secrets_in_a_config_file_are_refused(tmp_path: Path) -> None:
    """A key that looks like a credential is refused with the reason."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[kalshi]\nprivate_key = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="secrets come from the environment"):
        load_settings(cfg)


def test_bad_environment_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad EVOARENA_* value is reported as configuration, naming the variable."""
    monkeypatch.setenv("EVOARENA_TRADING__TICK_INTERVAL_SECS", "soon")
    with pytest.raises(ConfigError, match="EVOARENA_TRADING__TICK_INTERVAL_SECS"):
        load_settings()


def test_bad_command_line_value_is_a_config_error() -> None:
    """An override that fails validation is reported, not raised raw."""
    with pytest.raises(ConfigError, match="command line"):
        load_settings(None, {"evolution": {"population_size": 0}})


def test_settings_are_frozen() -> None:
    """Nothing mutates settings after loading."""
    s = load_settings()
    with pytest.raises(ValidationError):
        s.trading.tick_interval_secs = 1  # type: ignore[misc]


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    """A --config path that does not exist names itself."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml")


def test_credentials_only_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key id and key path come from KALSHI_* variables and are hidden in repr."""
    monkeypatch.setenv("KALSHI_API_KEY_ID", "abc-123")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", "/keys/k.pem")
    creds = KalshiCredentials()
    assert creds.api_key_id is not None
    assert creds.api_key_id.get_secret_value() == "abc-123"
    assert creds.private_key_path == Path("/keys/k.pem")
    assert "abc-123" not in repr(creds)


def test_a_generation_holds_at_least_one_tick(tmp_path: Path) -> None:
    """A trading period shorter than one tick is refused."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[trading]\ngeneration_duration_secs = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="at least tick_interval_secs"):
        load_settings(cfg)
