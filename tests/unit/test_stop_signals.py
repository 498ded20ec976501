"""stop_on_signals: the first SIGTERM stops the work, later ones never kill the process."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from evoarena.statedir import STOP_SIGNALS, StopRequested, stop_on_signals


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
