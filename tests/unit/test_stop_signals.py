"""stop_on_signals and SignalInbox: the first SIGTERM stops the work, later ones never kill the
process."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from evoarena.statedir import MAX_IGNORED_LOGGED, STOP_SIGNALS, StopRequested, stop_on_signals


@pytest.fixture
def saved_handlers() -> Iterator[None]:
    """Whatever a test leaves installed, the test process gets its own handlers back."""
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("saved_handlers")
def test_a_block_that_ends_normally_restores_the_handlers() -> None:
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with stop_on_signals("test"):
        assert all(signal.getsignal(s) is not before[s] for s in STOP_SIGNALS)
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


@pytest.mark.usefixtures("saved_handlers")
def test_a_signal_after_the_stop_is_ignored_even_after_the_block(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The race behind a double SIGTERM: the second one lands after the block has unwound."""
    with pytest.raises(StopRequested, match="stopped by SIGTERM"), stop_on_signals("test"):
        signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)  # with the default handler back, this would kill pytest
    signal.raise_signal(signal.SIGINT)
    err = capfd.readouterr().err
    assert err.count("signal_ignored_during_shutdown") == 2


_INBOX_CHILD = """
import sys, threading, anyio
from evoarena.statedir import SignalInbox

async def main() -> None:
    inbox = SignalInbox("test").open()
    # A thread that does not block the signals, as asyncio's resolver threads and anyio's workers
    # do not: the kernel may hand it a process-directed SIGTERM at any instant.
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    try:
        print("ready", flush=True)
        signum = await inbox.receive()
        inbox.stop()
        print(f"stopping {signum}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # the final save, until told
    finally:
        inbox.close()
        release.set()
    print("saved", flush=True)

anyio.run(main)
"""


@pytest.mark.timeout(30)
def test_an_inbox_survives_a_burst_of_signals_during_shutdown() -> None:
    """The first SIGTERM is received; a burst during the final save, taken by any thread, is
    logged and ignored, and the process exits 0 once saved."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _INBOX_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline() == f"stopping {int(signal.SIGTERM)}\n"
    for _ in range(1000):  # a storm, to land on every instant of the shutdown
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
    proc.stdin.write("done\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == "saved\n"
    assert 1 <= err.count("signal_ignored_during_shutdown") <= MAX_IGNORED_LOGGED  # coalesced
    assert "Traceback" not in err
