"""`evoarena run` as a user meets it: real subprocesses, real files, loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.timeout(60)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_key(path: Path, mode: int = 0o600) -> rsa.RSAPrivateKey:
    """A fresh RSA key in PEM at ``path`` with ``mode``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(mode)
    return key


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 45
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m evoarena ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "evoarena", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def base_env(tmp_path: Path) -> dict[str, str]:
    """The parent environment without evoarena/Kalshi variables, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVOARENA_", "KALSHI_"))}
    env["EVOARENA_LOG__FORMAT"] = "json"
    env["HOME"] = str(tmp_path)
    return env


def _config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "prod.toml"
    cfg.write_text(
        f"""
[state]
dir = "{tmp_path / "state"}"

[kalshi]
rest_url = "http://127.0.0.1:{port}/trade-api/v2"
ws_url = "ws://127.0.0.1:{port}/trade-api/ws/v2"
max_retries = 2
retry_initial_delay_secs = 0.0
retry_max_delay_secs = 0.0
request_timeout_secs = 2.0
""",
        encoding="utf-8",
    )
    return cfg


def test_unreachable_host_fails_with_a_clear_message(tmp_path: Path) -> None:
    """Connection refused on every retry: one clear line naming the host, exit 1, no traceback."""
    port = _closed_port()
    key = tmp_path / "kalshi.pem"
    write_key(key)
    env = base_env(tmp_path)
    env["KALSHI_API_KEY_ID"] = "test-key-id"
    env["KALSHI_PRIVATE_KEY_PATH"] = str(key)
    proc = run_cli(["run", "--config", str(_config(tmp_path, port))], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("evoarena: feed failed:")
    assert f"127.0.0.1:{port}" in last


def test_missing_credentials_exit_2_naming_the_variable(tmp_path: Path) -> None:
    """No key id: exit 2 before any network use, the message names what to set."""
    env = base_env(tmp_path)
    proc = run_cli(["run", "--config", str(_config(tmp_path, _closed_port()))], env, tmp_path)
    assert proc.returncode == 2
    assert "KALSHI_API_KEY_ID" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_exposed_key_file_draws_a_warning_and_never_leaks(tmp_path: Path) -> None:
    """A group/other-readable key is warned about (with the fix); the key never reaches logs."""
    key_path = tmp_path / "kalshi.pem"
    write_key(key_path, mode=0o644)
    env = base_env(tmp_path)
    env["KALSHI_API_KEY_ID"] = "test-key-id-SECRET"
    env["KALSHI_PRIVATE_KEY_PATH"] = str(key_path)
    proc = run_cli(["run", "--config", str(_config(tmp_path, _closed_port()))], env, tmp_path)
    out = proc.stdout + proc.stderr
    assert "chmod 600" in out
    assert "PRIVATE KEY" not in out
    assert "test-key-id-SECRET" not in out


def test_bad_config_key_names_file_and_key(tmp_path: Path) -> None:
    """An unknown key in the config file: exit 2 and a message with the file and the key."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[trading]\ntick_interval_sec = 30\n", encoding="utf-8")
    proc = run_cli(["run", "--config", str(cfg)], base_env(tmp_path), tmp_path)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr
    assert "tick_interval_sec" in proc.stderr
    assert "Traceback" not in proc.stderr
