"""Kalshi request signing.

Every authenticated REST request and the WebSocket handshake carry three headers:
``KALSHI-ACCESS-KEY`` (the key id), ``KALSHI-ACCESS-TIMESTAMP`` (ms since the epoch) and
``KALSHI-ACCESS-SIGNATURE``: base64 of a signature over ``timestamp + METHOD + path``, where
``path`` includes the ``/trade-api/v2`` (or ``/trade-api/ws/v2``) prefix and never the query
string. RSA keys sign with RSA-PSS (SHA-256, MGF1-SHA-256, salt length = digest length); Ed25519
keys sign the same message with Ed25519.

The key material lives only inside :class:`Signer`; nothing here logs it, formats it into an
error message or shows it in ``repr``.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import structlog
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from evoarena.errors import AuthError
from evoarena.settings import KalshiCredentials

log = structlog.get_logger(__name__)

WS_SIGN_PATH = "/trade-api/ws/v2"
"""The path signed for the WebSocket handshake (always with method ``GET``)."""

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

_ENV_HINT = (
    "set KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH (the PEM file Kalshi gave you), "
    "or KALSHI_PRIVATE_KEY with the PEM text"
)

PrivateKey = RSAPrivateKey | Ed25519PrivateKey


def message_to_sign(now_ms: int, method: str, path: str) -> bytes:
    """The exact bytes Kalshi verifies: ``str(now_ms) + METHOD + path`` (query string dropped)."""
    bare_path = path.split("?", 1)[0]
    return f"{now_ms}{method.upper()}{bare_path}".encode()


class Signer:
    """Signs Kalshi requests with one API key. ``repr`` shows the algorithm and source only."""

    __slots__ = ("_key", "_key_id", "algorithm", "source")

    def __init__(self, key_id: str, private_key: PrivateKey, source: str) -> None:
        if not key_id.strip():
            msg = f"Kalshi credentials incomplete: KALSHI_API_KEY_ID is empty; {_ENV_HINT}"
            raise AuthError(msg)
        self._key_id = key_id.strip()
        self._key = private_key
        self.source = source
        """Where the key came from (a file path or an environment variable name)."""
        self.algorithm = (
            f"RSA-PSS-{private_key.key_size}"
            if isinstance(private_key, RSAPrivateKey)
            else "Ed25519"
        )
        """``RSA-PSS-<bits>`` or ``Ed25519``."""

    def __repr__(self) -> str:
        return f"Signer(algorithm={self.algorithm!r}, source={self.source!r})"

    def sign(self, message: bytes) -> str:
        """Base64 signature of ``message``."""
        if isinstance(self._key, RSAPrivateKey):
            raw = self._key.sign(
                message,
                padding.PSS(
                    mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
                ),
                hashes.SHA256(),
            )
        else:
            raw = self._key.sign(message)
        return base64.b64encode(raw).decode("ascii")

    def headers(self, method: str, path: str, now_ms: int) -> dict[str, str]:
        """The three ``KALSHI-ACCESS-*`` headers for ``method`` on ``path`` at ``now_ms``.

        ``path`` must include the API prefix (``/trade-api/v2/...`` or :data:`WS_SIGN_PATH`);
        a query string, if present, is not signed.
        """
        return {
            HEADER_KEY: self._key_id,
            HEADER_TIMESTAMP: str(now_ms),
            HEADER_SIGNATURE: self.sign(message_to_sign(now_ms, method, path)),
        }


def _parse_pem(data: bytes, source: str) -> PrivateKey:
    """Load an unencrypted PEM private key; errors name ``source`` and never echo the data."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as e:
        msg = f"{source}: the private key is encrypted; Kalshi keys are unencrypted PEM files"
        raise AuthError(msg) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        msg = (
            f"{source}: not a valid PEM private key "
            "(expected the '-----BEGIN ... PRIVATE KEY-----' file Kalshi gave you)"
        )
        raise AuthError(msg) from e
    if not isinstance(key, RSAPrivateKey | Ed25519PrivateKey):
        msg = f"{source}: unsupported key type {type(key).__name__}; Kalshi uses RSA or Ed25519"
        raise AuthError(msg)
    return key


def _warn_if_exposed(path: Path) -> None:
    """Warn (naming the file and the fix, never the content) when others may read the key."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "kalshi private key file is readable or writable by group/others",
            file=str(path),
            mode=oct(stat.S_IMODE(mode)),
            fix=f"chmod 600 {path}",
        )


def load_private_key_file(path: Path) -> PrivateKey:
    """Read a PEM key file, warning (with the ``chmod 600`` fix) if group/others can access it."""
    source = f"KALSHI_PRIVATE_KEY_PATH={path}"
    try:
        data = path.read_bytes()
    except OSError as e:
        msg = f"{source}: cannot read the private key file: {e.strerror or e}"
        raise AuthError(msg) from e
    _warn_if_exposed(path)
    return _parse_pem(data, source)


def load_private_key_text(pem: str) -> PrivateKey:
    """Parse PEM text from ``KALSHI_PRIVATE_KEY`` (literal ``\\n`` escapes are accepted)."""
    text = pem.strip()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return _parse_pem(text.encode(), "KALSHI_PRIVATE_KEY (environment)")


def signer_from_credentials(creds: KalshiCredentials) -> Signer:
    """Build a :class:`Signer`; :class:`AuthError` names the missing or bad variable.

    ``KALSHI_PRIVATE_KEY_PATH`` wins when both it and ``KALSHI_PRIVATE_KEY`` are set.
    """
    key_id = creds.api_key_id.get_secret_value().strip() if creds.api_key_id is not None else ""
    pem = creds.private_key_pem.get_secret_value() if creds.private_key_pem is not None else ""
    missing = []
    if not key_id:
        missing.append("KALSHI_API_KEY_ID")
    if creds.private_key_path is None and not pem.strip():
        missing.append("KALSHI_PRIVATE_KEY_PATH (or KALSHI_PRIVATE_KEY)")
    if missing:
        msg = f"Kalshi credentials missing: {', '.join(missing)} not set; {_ENV_HINT}"
        raise AuthError(msg)
    if creds.private_key_path is not None:
        path = creds.private_key_path.expanduser()
        return Signer(key_id, load_private_key_file(path), str(path))
    return Signer(key_id, load_private_key_text(pem), "KALSHI_PRIVATE_KEY")


def load_signer(creds: KalshiCredentials | None = None) -> Signer:
    """Build a :class:`Signer` from ``creds`` (default: the ``KALSHI_*`` environment variables).

    Raises :class:`AuthError` naming the missing or unusable variable.
    """
    return signer_from_credentials(creds if creds is not None else KalshiCredentials())
