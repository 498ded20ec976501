"""The live service's operator hooks: status file, ``/metrics`` + ``/healthz``, webhooks, retention.

:class:`LiveMonitor` reads the supervisor's state (it never changes it) and is called from a few
small hooks in :mod:`evoarena.supervisor`: ``run`` (a task started with the service),
``heartbeat`` (rewrite ``status.json``), ``after_fire`` (notice finished generations: webhook and
retention), ``finish`` (final status; webhook on a fatal error). A failure in any of these is
logged and never stops trading.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
import structlog
from anyio.abc import SocketAttribute
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from evoarena.clock import Clock, iso_ms
from evoarena.errors import ConfigError
from evoarena.observe.notify import Notifier, failure_payload, generation_payload
from evoarena.observe.retention import prune
from evoarena.observe.status import Vitals, health_problems, write_status
from evoarena.settings import Settings

if TYPE_CHECKING:
    from evoarena.supervisor import Outcome, Supervisor

log = structlog.get_logger(__name__)

_MAX_REQUEST_BYTES = 8192
_REQUEST_TIMEOUT_SECS = 5.0


async def bind_metrics(settings: Settings) -> anyio.abc.SocketListener | None:
    """The listener for ``[metrics]`` (``None`` when disabled); a bind failure is a config error."""
    m = settings.metrics
    if not m.enabled:
        return None
    try:
        listener = await anyio.create_tcp_listener(local_host=m.host, local_port=m.port)
    except OSError as e:
        msg = f"metrics.host/port: cannot listen on {m.host}:{m.port}: {e.strerror or e}"
        raise ConfigError(msg) from e
    return cast(anyio.abc.SocketListener, listener.listeners[0])


class LiveMonitor:
    """Status, metrics, health and notifications of one live run."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        mode: str = "evolve",
        listener: anyio.abc.SocketListener | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.mode = mode
        self.listener = listener
        self.port = self._port_of(listener)
        """The port ``/metrics`` listens on (``None`` when disabled)."""
        self.notifier = notifier if notifier is not None else Notifier(settings.notify)
        self.state_dir = Path(settings.state.dir)
        self.host = socket.gethostname()
        self.feed_stats: dict[str, Any] = {}
        self.notified = 0
        self._fps_at: tuple[float, int] | None = None
        self.frames_per_sec = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self._sup: Supervisor | None = None
        self._served = False
        self.registry.register(_Collector(self))

    @staticmethod
    def _port_of(listener: anyio.abc.SocketListener | None) -> int | None:
        if listener is None:
            return None
        address = listener.extra(SocketAttribute.local_address)  # noqa: S610 - anyio, not Django
        return int(cast(tuple[str, int], address)[1])

    # -- hooks --------------------------------------------------------------------------------

    async def run(self, sup: Supervisor) -> None:
        """Started with the service: first status, then serve HTTP and send webhooks."""
        self._sup = sup
        self.write(sup)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.notifier.run)
            if self.listener is not None:
                log.info(
                    "metrics_listening",
                    host=self.settings.metrics.host,
                    port=self.port,
                    paths=["/metrics", "/healthz"],
                )
                tg.start_soon(self._serve, self.listener)

    def heartbeat(self, sup: Supervisor, feed_stats: Mapping[str, Any]) -> None:
        """Each heartbeat: keep the feed's counters and rewrite the status file."""
        self.feed_stats = dict(feed_stats)
        self.write(sup)

    def after_fire(self, sup: Supervisor) -> None:
        """After the scheduler acted: a webhook (and pruning) for each newly finished generation."""
        try:
            self._after_fire(sup)
        except Exception as e:  # bookkeeping must never stop trading
            log.error("monitor_after_fire_failed", error=f"{type(e).__name__}: {e}", exc_info=e)

    def _after_fire(self, sup: Supervisor) -> None:
        completed = sup.runner.completed
        while self.notified < len(completed):
            g = completed[self.notified]
            self.notified += 1
            self.notifier.post_nowait(
                generation_payload(
                    g.generation, g.stats, mode=self.mode, state_dir=str(self.state_dir)
                )
            )
            try:
                prune(self.settings, self.state_dir, sup, now_wall_s=time.time())
            except OSError as e:
                log.warning("retention_failed", error=str(e))

    async def finish(self, sup: Supervisor, outcome: Outcome) -> None:
        """The service has stopped: final status; on a failure, the webhook (bounded wait).

        Never raises: the exit code is already decided.
        """
        try:
            await self._finish(sup, outcome)
        except Exception as e:
            log.error("monitor_finish_failed", error=f"{type(e).__name__}: {e}", exc_info=e)

    async def _finish(self, sup: Supervisor, outcome: Outcome) -> None:
        if self.listener is not None and not self._served:  # bound, but the service never started
            with anyio.CancelScope(shield=True):
                await self.listener.aclose()
        self.write(sup, outcome)
        self.notifier.close()
        if outcome.exit_code == 0 or not self.notifier.enabled:
            return
        payload = failure_payload(
            outcome.exit_code,
            outcome.reason,
            outcome.message,
            generation=sup.runner.generation,
            mode=self.mode,
        )
        s = self.settings.notify
        budget = (s.timeout_secs + s.retry_delay_secs * 2**s.retries) * (s.retries + 1)
        with anyio.CancelScope(shield=True), anyio.move_on_after(budget):
            await self.notifier.send(payload)

    # -- status -------------------------------------------------------------------------------

    def vitals(self, sup: Supervisor) -> Vitals:
        """The service's vital signs now."""
        return Vitals(
            now_ms=self.clock.now_ms(),
            started=sup.started,
            last_frame_ms=sup.last_frame_ms,
            next_due_ms=sup.runner.next_due_ms(),
        )

    def problems(self, sup: Supervisor) -> list[str]:
        """Why ``/healthz`` answers 503 (empty: 200)."""
        m = self.settings.metrics
        return health_problems(
            self.vitals(sup), feed_stale_secs=m.feed_stale_secs, tick_late_secs=m.tick_late_secs
        )

    def _fps(self, frames: int) -> float:
        now = time.monotonic()
        if self._fps_at is not None and now > self._fps_at[0]:
            speed = float(getattr(self.clock, "speed", 1.0))
            self.frames_per_sec = (frames - self._fps_at[1]) / ((now - self._fps_at[0]) * speed)
        self._fps_at = (now, frames)
        return self.frames_per_sec

    def status_doc(self, sup: Supervisor, outcome: Outcome | None = None) -> dict[str, Any]:
        """The ``status.json`` document (see :mod:`evoarena.observe.status`)."""
        now = self.clock.now_ms()
        run = sup.runner.run
        phase_end = None
        if run is not None:
            phase_end = run.end_ms if run.phase.value == "trading" else run.deadline_ms
        speed = float(getattr(self.clock, "speed", 1.0))
        problems = self.problems(sup)
        doc: dict[str, Any] = {
            "service": "evoarena",
            "state": "running" if outcome is None else "stopped",
            "mode": self.mode,
            "pid": os.getpid(),
            "host": self.host,
            "written_at": iso_ms(now),
            "written_wall_ms": time.time_ns() // 1_000_000,
            "heartbeat_wall_secs": self.settings.kalshi.heartbeat_log_secs / speed,
            "generation": sup.runner.generation,
            "phase": run.phase.value if run is not None else "idle",
            "tick": run.tick_count if run is not None else 0,
            "total_ticks": run.total_ticks if run is not None else None,
            "phase_ends_at": iso_ms(phase_end) if phase_end is not None else None,
            "time_left_secs": max(0.0, (phase_end - now) / 1000) if phase_end is not None else None,
            "open_positions": run.open_positions() if run is not None else 0,
            "markets": len(sup.book.markets),
            "generations_completed": len(sup.runner.completed),
            "feed": {
                "frames_total": sup.frames_applied,
                "frames_per_sec": round(self._fps(sup.frames_applied), 2),
                "stale_books": len(sup.book.stale_tickers()),
                "reconnects": self.feed_stats.get("reconnects"),
                "last_frame_age_secs": (
                    None if sup.last_frame_ms is None else (now - sup.last_frame_ms) / 1000
                ),
            },
            "health": {"ok": not problems, "problems": problems},
            "metrics_port": self.port,
        }
        if outcome is not None:
            doc["exit"] = {
                "code": outcome.exit_code,
                "reason": outcome.reason,
                "message": outcome.message,
            }
        return doc

    def write(self, sup: Supervisor, outcome: Outcome | None = None) -> None:
        """Rewrite ``status.json``; a failure is logged, never raised."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            write_status(self.state_dir, self.status_doc(sup, outcome))
        except OSError as e:
            log.warning("status_write_failed", dir=str(self.state_dir), error=str(e))

    # -- HTTP ---------------------------------------------------------------------------------

    async def _serve(self, listener: anyio.abc.SocketListener) -> None:
        self._served = True
        async with listener:
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        """One request, one response, then close; never raises."""
        try:
            async with stream:
                with anyio.fail_after(_REQUEST_TIMEOUT_SECS):
                    head = b""
                    while b"\r\n\r\n" not in head and len(head) < _MAX_REQUEST_BYTES:
                        head += await stream.receive(4096)
                    status, ctype, body = self.respond(head)
                    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(
                        status, "Service Unavailable"
                    )
                    await stream.send(
                        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
        except Exception as e:  # a broken client must never reach the service's task group
            log.debug("metrics_request_failed", error=f"{type(e).__name__}: {e}")

    def respond(self, head: bytes) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` for a raw request head."""
        parts = head.split(b"\r\n", 1)[0].split()
        method = parts[0].decode("latin-1") if parts else ""
        path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) > 1 else ""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET only\n"
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)
        if path == "/healthz":
            if self._sup is None:
                return 503, "text/plain", b"starting\n"
            problems = self.problems(self._sup)
            if problems:
                return 503, "text/plain", ("\n".join(problems) + "\n").encode()
            return 200, "text/plain", b"ok\n"
        return 404, "text/plain", b"try /metrics or /healthz\n"


class _Collector(Collector):
    """Prometheus metrics computed from the supervisor at scrape time (no per-frame cost)."""

    def __init__(self, monitor: LiveMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        mon = self.monitor
        sup = mon._sup
        if sup is None:
            return
        run = sup.runner.run
        now = mon.clock.now_ms()

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"evoarena_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"evoarena_{name}", doc, value=value)

        yield gauge("healthy", "1 when /healthz answers 200", 0.0 if mon.problems(sup) else 1.0)
        yield gauge("generation", "current generation number", sup.runner.generation)
        yield gauge("tick", "ticks done in the current generation", run.tick_count if run else 0)
        phase = GaugeMetricFamily("evoarena_phase", "current phase (1 = active)", labels=["phase"])
        for name in ("trading", "settling", "done"):
            phase.add_metric([name], 1.0 if run is not None and run.phase.value == name else 0.0)
        yield phase
        yield gauge("open_positions", "open paper positions", run.open_positions() if run else 0)
        yield gauge("markets", "markets in the book", len(sup.book.markets))
        yield gauge("stale_books", "order books marked stale", len(sup.book.stale_tickers()))
        yield counter("feed_frames", "market-data frames applied", sup.frames_applied)
        yield counter(
            "feed_reconnects", "WebSocket reconnects", mon.feed_stats.get("reconnects", 0)
        )
        age = -1.0 if sup.last_frame_ms is None else (now - sup.last_frame_ms) / 1000
        yield gauge("feed_last_frame_age_seconds", "age of the last frame (-1: none)", age)
        due = sup.runner.next_due_ms()
        lag = 0.0 if due is None else max(0.0, (now - due) / 1000)
        yield gauge("scheduler_lag_seconds", "how late the next due action is", lag)
        yield counter(
            "generations_completed",
            "generations finished by this process",
            len(sup.runner.completed),
        )
        yield counter("notify_sent", "webhook messages accepted", mon.notifier.sent)
        yield counter("notify_failed", "webhook messages given up", mon.notifier.failed)
