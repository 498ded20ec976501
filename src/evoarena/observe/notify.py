"""Webhook notifications: a JSON summary POSTed at each generation's end and on a fatal error.

Trading never waits for a webhook: :meth:`Notifier.post_nowait` only queues (a full queue drops
the message with a warning), and :meth:`Notifier.run` sends from its own task, retrying failures
(connection errors, 429 and 5xx) ``retries`` times with doubling delays. A message that still
fails is logged and dropped. The final message of a failing service is sent by
:meth:`Notifier.send` within a bounded time.

Every payload has ``event``, ``service`` ("evoarena"), ``host`` and ``text`` (one line for
people; chat webhooks such as Slack's show it).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from evoarena.settings import NotifySettings

log = structlog.get_logger(__name__)

QUEUE_SIZE = 32


def generation_payload(
    generation: int, stats: Mapping[str, Any], *, mode: str, state_dir: str
) -> dict[str, Any]:
    """The message for a finished generation (``stats`` as in ``gen_NNNN.json``)."""
    keys = (
        "population",
        "best_fitness",
        "mean_fitness",
        "best_roi",
        "median_roi",
        "active_bots",
        "total_trades",
        "settled_trades",
        "fees_paid",
        "realized_pnl",
        "force_closed",
        "finished",
    )
    summary = {k: stats[k] for k in keys if k in stats}
    text = (
        f"evoarena ({mode}): generation {generation} complete — best fitness "
        f"{float(stats.get('best_fitness', 0.0)):+.2f}, best ROI on bankroll "
        f"{float(stats.get('best_roi', 0.0)):+.2f}%, {stats.get('active_bots', 0)}/"
        f"{stats.get('population', 0)} bots traded, {stats.get('total_trades', 0)} trades "
        "(paper, in-sample)"
    )
    return {
        "event": "generation_complete",
        "mode": mode,
        "generation": generation,
        "state_dir": state_dir,
        "stats": summary,
        "text": text,
    }


def failure_payload(
    exit_code: int, reason: str, message: str, *, generation: int, mode: str
) -> dict[str, Any]:
    """The message for a service that stops on a fatal error."""
    return {
        "event": "service_failed",
        "mode": mode,
        "generation": generation,
        "exit_code": exit_code,
        "reason": reason,
        "message": message,
        "text": f"evoarena ({mode}) stopped: {reason} (exit {exit_code}): {message}",
    }


class Notifier:
    """Queues and sends webhook messages (see the module docstring)."""

    def __init__(self, settings: NotifySettings, *, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self.url = settings.webhook_url
        self._client = client
        self._send: MemoryObjectSendStream[dict[str, Any]] | None = None
        self._receive: MemoryObjectReceiveStream[dict[str, Any]] | None = None
        if self.enabled:
            self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](
                QUEUE_SIZE
            )
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.host = socket.gethostname()

    @property
    def enabled(self) -> bool:
        """True when a webhook URL is set."""
        return bool(self.url)

    def post_nowait(self, payload: Mapping[str, Any]) -> None:
        """Queue a message; never blocks (a full queue drops it with a warning)."""
        if self._send is None:
            return
        try:
            self._send.send_nowait(self._stamp(payload))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
            log.warning("notify_dropped", kind=payload.get("event"), queued=QUEUE_SIZE)

    def _stamp(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {"service": "evoarena", "host": self.host, **payload}

    async def run(self) -> None:
        """Send queued messages until cancelled."""
        if self._receive is None:
            return
        try:
            async for payload in self._receive:
                try:
                    await self.send(payload, stamped=True)
                except Exception as e:  # a webhook must never stop trading
                    self.failed += 1
                    log.error("notify_error", error=f"{type(e).__name__}: {e}", exc_info=e)
        except anyio.ClosedResourceError:
            return

    async def send(self, payload: Mapping[str, Any], *, stamped: bool = False) -> bool:
        """POST one message with retries; True if the webhook accepted it (2xx)."""
        if not self.enabled:
            return False
        body = dict(payload) if stamped else self._stamp(payload)
        s = self.settings
        delay = s.retry_delay_secs
        last = ""
        for attempt in range(s.retries + 1):
            try:
                resp = await self._post(body)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if resp.is_success:
                    self.sent += 1
                    log.info("notify_sent", kind=body.get("event"), status=resp.status_code)
                    return True
                last = f"HTTP {resp.status_code}"
                if resp.status_code < 500 and resp.status_code != 429:
                    break  # the webhook refuses this message; retrying will not help
            if attempt < s.retries:
                await anyio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.warning("notify_failed", kind=body.get("event"), url=self.url, error=last)
        return False

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        timeout = httpx.Timeout(self.settings.timeout_secs)
        if self._client is not None:
            return await self._client.post(self.url, json=body, timeout=timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            return await client.post(self.url, json=body)

    def close(self) -> None:
        """No more messages will be queued or sent from the queue."""
        if self._send is not None and self._receive is not None:
            self._send.close()
            self._receive.close()
