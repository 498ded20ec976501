"""The exception tree.

EvoarenaError
├── UserError              — a person's mistake; the CLI prints the message and exits 2
│   ├── ConfigError        — invalid settings (names the key or file)
│   ├── RecordingError     — a bad recording line (``file:line: reason``)
│   ├── StateError         — a state file is missing, corrupt or of another schema (names the
│   │                        file); a restart cannot fix it, so it also exits 2
│   └── StateLockedError   — another evoarena process holds the state directory's lock
├── StateWriteError        — the disk refused a state write (full disk, I/O error): exit 1, so a
│                            supervisor restarts the service once the disk is usable again
└── FeedError              — trouble with a market-data source
    ├── RetryableFeedError — network, 429, 5xx: retried with backoff inside the task
    └── FatalFeedError     — 401/403, unreachable host after retries: stops the service
        └── AuthError      — credentials refused or missing
"""

from __future__ import annotations


class EvoarenaError(Exception):
    """Base of every error evoarena raises on purpose."""


class UserError(EvoarenaError):
    """A mistake in what the user gave us; shown without a traceback, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """Invalid configuration: the message names the key (and file) at fault."""


class RecordingError(UserError):
    """A recording line that cannot be read, reported as ``file:line: reason``."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")


class StateError(UserError):
    """A state-directory file is unusable; the message names the file and the problem."""


class StateWriteError(EvoarenaError):
    """A state file could not be written (full disk, I/O error); a later restart can succeed."""


class StateLockedError(UserError):
    """Another evoarena process holds the state directory's lock."""


class FeedError(EvoarenaError):
    """A market-data source failed."""


class RetryableFeedError(FeedError):
    """A transient failure (network, HTTP 429 or 5xx) worth retrying after a backoff."""


class FatalFeedError(FeedError):
    """A failure that retrying will not fix; the service stops cleanly and exits non-zero."""


class AuthError(FatalFeedError):
    """Kalshi refused our credentials, or none were provided."""
