"""structlog configuration: JSON lines when stderr is not a TTY, a pretty console when it is.

Called once, from the CLI. Library modules only do ``structlog.get_logger(__name__)``.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Keys whose values must never reach a log line, whatever a caller passes.
_SECRET_KEYS = frozenset(
    {
        "private_key",
        "private_key_pem",
        "api_key_id",
        "signature",
        "KALSHI-ACCESS-SIGNATURE",
        "KALSHI-ACCESS-KEY",
        "authorization",
    }
)


def _redact(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the *current* ``sys.stderr`` (it can be replaced, e.g. under test capture)."""
    return structlog.PrintLogger(file=sys.stderr)


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
) -> None:
    """Route structlog to stderr at ``level``, rendered as JSON or for a console."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        # Tracebacks never show frame locals: a frame can hold signed request headers.
        structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        if use_console
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if not use_console:
        processors.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
