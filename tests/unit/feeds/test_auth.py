"""Kalshi request signing: the signature Kalshi verifies, key loading, and secrecy."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from structlog.testing import capture_logs

from evoarena.clock import VirtualClock
from evoarena.errors import AuthError
from evoarena.feeds.kalshi.auth import Signer, load_signer

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11111111abcd"
NOW_MS = 1_703_123_456_789


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    """One RSA key for the module (generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, password: bytes | None = None) -> str:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    ).decode()


def _pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _verify_rsa(public: rsa.RSAPublicKey, signature_b64: str, message: bytes) -> None:
    public.verify(
        base64.b64decode(signature_b64),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def _set_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_rsa_signature_covers_timestamp_method_and_path(rsa_private: rsa.RSAPrivateKey) -> None:
    """The signature is RSA-PSS/SHA-256 (salt 32) over timestamp + METHOD + path."""
    clock = VirtualClock(NOW_MS)
    signer = Signer(KEY_ID, rsa_private, "test")
    headers = signer.headers("get", "/trade-api/v2/portfolio/balance", clock.now_ms())
    message = b"1703123456789GET/trade-api/v2/portfolio/balance"
    _verify_rsa(rsa_private.public_key(), headers["KALSHI-ACCESS-SIGNATURE"], message)
    with pytest.raises(InvalidSignature):
        _verify_rsa(rsa_private.public_key(), headers["KALSHI-ACCESS-SIGNATURE"], message + b"x")


def test_headers_carry_key_id_and_clock_timestamp(rsa_private: rsa.RSAPrivateKey) -> None:
    """Exactly the three KALSHI-ACCESS-* headers, the timestamp taken from the clock."""
    clock = VirtualClock(NOW_MS)
    clock.advance(2.5)
    headers = Signer(KEY_ID, rsa_private, "test").headers("GET", "/x", clock.now_ms())
    assert set(headers) == {
        "KALSHI-ACCESS-KEY",
        "KALSHI-ACCESS-SIGNATURE",
        "KALSHI-ACCESS-TIMESTAMP",
    }
    assert headers["KALSHI-ACCESS-KEY"] == KEY_ID
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == str(NOW_MS + 2500)


def test_query_string_is_not_signed(rsa_private: rsa.RSAPrivateKey) -> None:
    """A path with a query is signed as the path without it."""
    signer = Signer(KEY_ID, rsa_private, "test")
    headers = signer.headers("GET", "/trade-api/v2/markets?limit=5&cursor=abc", NOW_MS)
    message = f"{NOW_MS}GET/trade-api/v2/markets".encode()
    _verify_rsa(rsa_private.public_key(), headers["KALSHI-ACCESS-SIGNATURE"], message)


def test_ed25519_keys_sign_the_same_message() -> None:
    """Ed25519 keys sign the same message with Ed25519."""
    key = ed25519.Ed25519PrivateKey.generate()
    headers = Signer(KEY_ID, key, "test").headers("GET", "/trade-api/ws/v2", NOW_MS)
    signature = base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"])
    key.public_key().verify(signature, f"{NOW_MS}GET/trade-api/ws/v2".encode())


def test_key_from_environment_text(
    monkeypatch: pytest.MonkeyPatch, rsa_private: rsa.RSAPrivateKey
) -> None:
    """KALSHI_PRIVATE_KEY holds the PEM text (real or escaped newlines)."""
    pem = _pem(rsa_private)
    for text in (pem, pem.replace("\n", "\\n")):
        _set_env(monkeypatch, KALSHI_API_KEY_ID=KEY_ID, KALSHI_PRIVATE_KEY=text)
        signer = load_signer()
        headers = signer.headers("GET", "/trade-api/v2/markets", NOW_MS)
        message = f"{NOW_MS}GET/trade-api/v2/markets".encode()
        _verify_rsa(rsa_private.public_key(), headers["KALSHI-ACCESS-SIGNATURE"], message)
        assert signer.source == "KALSHI_PRIVATE_KEY"


def test_key_from_private_file_does_not_warn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    """A 0600 key file loads silently; its path wins over KALSHI_PRIVATE_KEY."""
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(_pem(rsa_private))
    os.chmod(key_file, 0o600)
    other = ed25519.Ed25519PrivateKey.generate()
    _set_env(
        monkeypatch,
        KALSHI_API_KEY_ID=KEY_ID,
        KALSHI_PRIVATE_KEY_PATH=str(key_file),
        KALSHI_PRIVATE_KEY=_pem(other),
    )
    with capture_logs() as logs:
        signer = load_signer()
    assert logs == []
    assert signer.algorithm == "RSA-PSS-2048"
    assert signer.source == str(key_file)


def test_key_file_readable_by_others_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    """A key file readable by group/others draws one warning with the fix."""
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(_pem(rsa_private))
    os.chmod(key_file, 0o644)
    _set_env(monkeypatch, KALSHI_API_KEY_ID=KEY_ID, KALSHI_PRIVATE_KEY_PATH=str(key_file))
    with capture_logs() as logs:
        load_signer()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["file"] == str(key_file)
    assert warnings[0]["mode"] == "0o644"
    assert "chmod 600" in warnings[0]["fix"]


def test_secrets_never_reach_logs_repr_or_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    """Neither the key material nor the key id appears in logs, repr, str or error messages."""
    pem = _pem(rsa_private)
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(pem)
    os.chmod(key_file, 0o664)
    _set_env(monkeypatch, KALSHI_API_KEY_ID=KEY_ID, KALSHI_PRIVATE_KEY_PATH=str(key_file))
    with capture_logs() as logs:
        signer = load_signer()
        signer.headers("GET", "/trade-api/v2/markets", NOW_MS)
        broken = pem.replace(_pem_body_lines(pem)[3], "!!!!" * 16)
        monkeypatch.delenv("KALSHI_PRIVATE_KEY_PATH")
        monkeypatch.setenv("KALSHI_PRIVATE_KEY", broken)
        with pytest.raises(AuthError) as bad:
            load_signer()
    assert logs, "the exposed key file should have produced a warning"
    seen = " ".join([repr(logs), repr(signer), str(signer), str(bad.value)])
    for line in _pem_body_lines(pem):
        assert line not in seen
    assert KEY_ID not in seen
    assert "KALSHI_PRIVATE_KEY" in str(bad.value)


def test_missing_credentials_name_the_variables() -> None:
    """With nothing set, the error names every variable to set."""
    with pytest.raises(AuthError) as e:
        load_signer()
    message = str(e.value)
    assert "KALSHI_API_KEY_ID" in message
    assert "KALSHI_PRIVATE_KEY_PATH" in message


def test_missing_key_file_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A key path that does not exist is an AuthError naming it."""
    missing = tmp_path / "nope.pem"
    _set_env(monkeypatch, KALSHI_API_KEY_ID=KEY_ID, KALSHI_PRIVATE_KEY_PATH=str(missing))
    with pytest.raises(AuthError, match=r"nope\.pem"):
        load_signer()


def test_encrypted_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, rsa_private: rsa.RSAPrivateKey
) -> None:
    """Kalshi keys are unencrypted; an encrypted PEM gets a clear error."""
    _set_env(
        monkeypatch,
        KALSHI_API_KEY_ID=KEY_ID,
        KALSHI_PRIVATE_KEY=_pem(rsa_private, password=b"hunter2"),
    )
    with pytest.raises(AuthError, match="encrypted"):
        load_signer()


def test_blank_key_id_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    """A signer needs a key id."""
    with pytest.raises(AuthError, match="KALSHI_API_KEY_ID"):
        Signer("  ", rsa_private, "test")
