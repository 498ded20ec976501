"""Owning a state directory: one process at a time, checked writable, calm under signals.

* :func:`state_dir_lock` — an exclusive ``fcntl.flock`` on ``<state dir>/.evoarena.lock`` held
  for the life of a ``run`` or ``replay``. The OS drops it when the process dies (even by
  ``kill -9``), so a stale lock file never blocks a restart. A second process gets
  :class:`~evoarena.errors.StateLockedError` (one line, exit 2) naming the holder's pid.
* :func:`~evoarena.evolution.persistence.check_writable` is called right after locking, so an
  unusable directory is reported at start, not at the first checkpoint.
* :func:`ignore_further_signals` — after the first SIGINT/SIGTERM, later ones are logged and
  ignored until the caller has finished its final save (systemd and Docker forward a second
  signal to the whole process group).
* :class:`SignalInbox` — the same for the asyncio service, with no instant at which a signal
  takes its default, killing action.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import orjson
import structlog

from evoarena.errors import StateError, StateLockedError
from evoarena.evolution import persistence

log = structlog.get_logger(__name__)

LOCK_FILE = ".evoarena.lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@contextlib.contextmanager
def state_dir_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state directory exclusively (see the module docstring); checks it is writable."""
    persistence.ensure_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        msg = f"{path}: cannot open the lock file: {e.strerror or e}"
        raise StateError(msg) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                msg = f"{path}: cannot lock: {e.strerror or e}"
                raise StateError(msg) from e
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            msg = (
                f"{state_dir}: in use by another evoarena process (pid {holder}); stop it "
                "first or use another --state-dir"
            )
            raise StateLockedError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        persistence.check_writable(state_dir)
        yield
    finally:
        os.close(fd)  # releases the lock


def ignore_further_signals(context: str) -> Callable[[], None]:
    """Log and ignore SIGINT/SIGTERM from now on; returns a function restoring the old handlers.

    Call it as soon as the first stop signal has been taken (the caller then saves and exits).
    """

    ignored = _IgnoredSignals(context)
    previous: dict[int, _Handler] = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, ignored)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


MAX_IGNORED_LOGGED = 10
"""Ignored signals logged one by one; a storm of them is counted, not logged (the handler then
does next to nothing, so it cannot recurse into itself until the stack runs out)."""


class _IgnoredSignals:
    """A signal handler that logs the first :data:`MAX_IGNORED_LOGGED` signals and ignores all."""

    def __init__(self, context: str) -> None:
        self.context = context
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > MAX_IGNORED_LOGGED:
            return
        # Not through structlog: the interrupted code may hold the logger's write lock.
        line = {
            "event": "signal_ignored_during_shutdown",
            "level": "warning",
            "signal": signal.Signals(signum).name,
            "context": self.context,
            "note": "the final save is in progress; the process exits when it is done",
        }
        if self.count == MAX_IGNORED_LOGGED:
            line["note"] += "; further signals are ignored without a log line"
        with contextlib.suppress(OSError):
            os.write(2, orjson.dumps(line) + b"\n")


class SignalInbox:
    """SIGINT/SIGTERM for an event loop, from :meth:`open` to :meth:`close`, never killing.

    Leaving an asyncio signal receiver puts back the default action, which terminates the
    process, for an instant before other handlers can be installed; blocking the signals in the
    main thread meanwhile does not help, as the kernel then hands a process-directed signal to
    another thread (asyncio's resolver threads, anyio's workers). So the inbox installs a Python
    handler once and keeps it: the interpreter writes each signal's number to a socket pair
    (:func:`signal.set_wakeup_fd`), whatever thread took it, and :meth:`receive` awaits it.
    After :meth:`stop`, the handler logs and ignores every signal. :meth:`close` restores the
    previous handlers, unless stopped: a process stopped by a signal goes on ignoring them
    while it exits.
    """

    def __init__(self, context: str) -> None:
        self.context = context
        self.stopped = False
        self._ignored = _IgnoredSignals(context)
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous: dict[int, _Handler] = {}
        self._previous_fd = -1
        self._open = False

    def open(self) -> SignalInbox:
        """Install the handlers (main thread only)."""
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self._open = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopped:
            self._ignored(signum, frame)

    async def receive(self) -> int:
        """The next signal's number (those that came before :meth:`stop`)."""
        import anyio  # the service's dependency; replay never opens an inbox

        while True:
            try:
                data = self._read.recv(1)
            except BlockingIOError:
                await anyio.wait_readable(self._read)
                continue
            if data and data[0] in STOP_SIGNALS:
                return data[0]

    def stop(self) -> None:
        """From now on, log and ignore every signal."""
        self.stopped = True

    def close(self) -> None:
        """Give the wakeup fd back; restore the handlers, or, once stopped, ignore the signals
        in the kernel (the interpreter puts the default action back in place of a Python
        handler as it exits; an ignored signal it leaves alone)."""
        if self._open:
            for sig, handler in self._previous.items():
                if self.stopped:
                    signal.signal(sig, signal.SIG_IGN)
                else:
                    signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(self._previous_fd)
            self._open = False
        self._read.close()
        self._write.close()


class StopRequested(BaseException):
    """Raised in the main thread by :func:`stop_on_signals` when SIGINT/SIGTERM arrives.

    A ``BaseException``, like ``KeyboardInterrupt``, so no ``except Exception`` (a tick's error
    guard) swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal}")


@contextlib.contextmanager
def stop_on_signals(context: str) -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into :class:`StopRequested`; ignore the ones after it.

    For synchronous work (replay) whose every state write is atomic and resumable: stopping at
    any instant is safe. Old handlers are restored on a normal exit; after a stop, further
    signals stay ignored (and logged) for the rest of the process, which is shutting down — a
    second SIGTERM arriving after the block must not kill it before it exits 0.
    """
    stopped = False

    def first(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True
        ignore_further_signals(context)
        raise StopRequested(signum)  # logged by whoever catches it, outside the handler

    previous = {sig: signal.signal(sig, first) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if not stopped:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
