"""Webhook notifications against a local HTTP server: retried, bounded, never blocking."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from test_supervisor import ScriptedFeed, _settings
from webhook_server import webhook_server

from evoarena.clock import ScaledClock
from evoarena.errors import FatalFeedError
from evoarena.observe.notify import QUEUE_SIZE, Notifier, generation_payload
from evoarena.settings import NotifySettings
from evoarena.supervisor import Supervisor

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _cfg(url: str, retries: int = 2) -> NotifySettings:
    return NotifySettings(webhook_url=url, timeout_secs=5, retries=retries, retry_delay_secs=0.001)


async def test_retries_server_errors_and_gives_up_on_refusals() -> None:
    async with webhook_server() as hook:
        hook.statuses.extend([503, 500])
        n = Notifier(_cfg(hook.url))
        assert await n.send({"event": "x", "text": "t"})
        assert hook.attempts == 3
        assert hook.received[0]["service"] == "evoarena"
        hook.statuses.append(400)  # a refusal is not retried
        assert not await n.send({"event": "y"})
        assert hook.attempts == 4
        hook.statuses.extend([500, 500, 500])  # retries run out
        assert not await n.send({"event": "z"})
        assert (n.sent, n.failed) == (1, 2)
        n.close()


async def test_unreachable_webhook_fails_quietly_and_queue_never_blocks() -> None:
    n = Notifier(_cfg("http://127.0.0.1:9/hook", retries=1))
    with anyio.fail_after(5):
        assert not await n.send({"event": "x"})
    for i in range(QUEUE_SIZE + 5):
        n.post_nowait(generation_payload(i, {}, mode="evolve", state_dir="s"))
    assert n.dropped == 5
    n.close()


async def test_fatal_error_reaches_the_webhook(tmp_path: Path) -> None:
    async with webhook_server() as hook:
        base = _settings(tmp_path)
        s = base.model_copy(update={"notify": _cfg(hook.url)})
        clock = ScaledClock(20_000.0)
        feed = ScriptedFeed(clock, fail_with=FatalFeedError("Kalshi unreachable after 6 tries"))
        outcome = await Supervisor(s, feed, clock, handle_signals=False).run()
        assert outcome.exit_code == 1
        with anyio.fail_after(5):
            body = await hook.wait_for("service_failed")
    assert body["exit_code"] == 1
    assert "Kalshi unreachable" in body["message"]
    assert body["text"].startswith("evoarena (evolve) stopped: feed failed")
