"""Logging: secrets never reach a log line, not even through a traceback's frame locals."""

from __future__ import annotations

import re
from typing import Literal

import pytest
import structlog

from evoarena.logs import configure_logging

pytestmark = pytest.mark.timeout(10)

SECRET = "KALSHI-SIGNATURE-abc123SECRET"


def _fail_with_secret_local() -> None:
    headers = {"KALSHI-ACCESS-SIGNATURE": SECRET}
    raise RuntimeError(f"boom with {len(headers)} headers")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_do_not_show_frame_locals(
    fmt: Literal["json", "console"], capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception logged with its traceback does not print the frames' local variables."""
    configure_logging("info", fmt)
    log = structlog.get_logger("test")
    try:
        _fail_with_secret_local()
    except RuntimeError:
        log.exception("service_crashed")
    err = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().err)  # drop console colours
    assert "boom with 1 headers" in err
    assert "_fail_with_secret_local" in err
    assert SECRET not in err


def test_secret_keys_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """Known secret field names are replaced before rendering."""
    configure_logging("info", "json")
    structlog.get_logger("test").info("request", signature=SECRET, api_key_id="id-1")
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "id-1" not in err
    assert "[redacted]" in err
