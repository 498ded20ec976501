"""Open a page in real headless Debian ``chromium`` and talk to it over the DevTools protocol.

Only loopback: chromium listens on 127.0.0.1 with an OS-chosen port, which it writes to
``DevToolsActivePort`` in its fresh profile directory.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,2000",
)


@dataclass
class Page:
    """One page target: commands in, events collected."""

    ws: ClientConnection
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its reply (events meanwhile are kept)."""
        cid = next(self.ids)
        await self.ws.send(orjson.dumps({"id": cid, "method": method, "params": params}).decode())
        while cid not in self.replies:
            msg = orjson.loads(await self.ws.recv())
            if "id" in msg:
                self.replies[msg["id"]] = msg
            else:
                self.events.append(msg)
        reply = self.replies.pop(cid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def wait_event(self, method: str) -> dict[str, Any]:
        """The first event named ``method`` (already received or next)."""
        while True:
            for ev in self.events:
                if ev.get("method") == method:
                    return ev
            msg = orjson.loads(await self.ws.recv())
            if "id" in msg:
                self.replies[msg["id"]] = msg
            else:
                self.events.append(msg)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out


@asynccontextmanager
async def chromium_page(profile: Path) -> AsyncIterator[Page]:
    """A headless chromium with a fresh profile in ``profile``, and its first page."""
    profile.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - setup before any async I/O
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child we end ourselves, not awaited I/O
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        with anyio.fail_after(20):
            # chromium announces its port only in this file: poll it, bounded by fail_after
            while not port_file.is_file() or not port_file.read_text().strip():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with connect(url, max_size=64 * 2**20) as ws:
            page = Page(ws)
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                await page.call(domain)
            yield page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
