"""A tiny HTTP server on 127.0.0.1 that records JSON POSTs (the webhook's receiving end)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import anyio.abc
import orjson
from anyio.abc import SocketAttribute


@dataclass
class WebhookServer:
    """Received bodies in order; ``statuses`` scripts the next answers (then 200)."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    attempts: int = 0
    changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        # A client may go away mid-request (e.g. a service stopped while sending).
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await self._handle(stream)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, body = data.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += await stream.receive()
            self.attempts += 1
            status = self.statuses.popleft() if self.statuses else 200
            if status == 200:
                self.received.append(orjson.loads(body))
            await stream.send(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            self.changed.set()
            self.changed = anyio.Event()

    async def wait_for(self, event: str) -> dict[str, Any]:
        """The first received body whose ``event`` is ``event`` (waits for it)."""
        while True:
            for body in self.received:
                if body.get("event") == event:
                    return body
            await self.changed.wait()


@asynccontextmanager
async def webhook_server() -> AsyncIterator[WebhookServer]:
    """Serve until the block ends."""
    server = WebhookServer()
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    listener = cast(anyio.abc.SocketListener, multi.listeners[0])
    server.port = int(listener.extra(SocketAttribute.local_address)[1])  # noqa: S610 - anyio
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()
