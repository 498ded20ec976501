"""Replay a recording through the same decoder the live feed uses.

:class:`ReplaySource` streams a recording (:class:`~evoarena.feeds.recording.RecordingReader`)
and yields one :class:`ReplayStep` per line, in file order: a WebSocket frame or REST response
becomes the domain events a :class:`~evoarena.feeds.kalshi.decoder.KalshiDecoder` makes of it; a
``mark`` line yields no events and the mark itself (a ``ws_reconnect`` mark also resets the
decoder's session, exactly as the live client did at that point). Nothing here sleeps or reads a
clock: ``t_ms`` is the recorded receive time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from evoarena.feeds.events import MarketEvent
from evoarena.feeds.guard import DEFAULT_MAX_TIME_JUMP_MS, safe_repr
from evoarena.feeds.kalshi.decoder import WS_RECONNECT_MARK, KalshiDecoder
from evoarena.feeds.recording import RecordingReader, RecordItem


class ReplayStep(NamedTuple):
    """One recording line, decoded."""

    t_ms: int
    events: list[MarketEvent]
    mark: dict[str, Any] | None
    line_no: int


class ReplaySource:
    """Iterate a recording as :class:`ReplayStep` values (single pass).

    ``skip_bad=False``: the first unreadable line raises
    :class:`~evoarena.errors.RecordingError` (``file:line: reason``); ``skip_bad=True``: bad lines
    are counted in ``reader.bad_count`` / ``reader.bad_lines`` and skipped. Malformed Kalshi
    content inside a well-formed line is the decoder's business (counted, never raised).
    """

    def __init__(
        self,
        path: Path,
        *,
        skip_bad: bool = False,
        decoder: KalshiDecoder | None = None,
        max_time_jump_ms: int = DEFAULT_MAX_TIME_JUMP_MS,
    ) -> None:
        self.path = path
        self.reader = RecordingReader(path, skip_bad=skip_bad, max_time_jump_ms=max_time_jump_ms)
        self.header: dict[str, Any] = self.reader.header
        self.decoder = decoder if decoder is not None else KalshiDecoder()

    def __iter__(self) -> Iterator[ReplayStep]:
        decode_ws = self.decoder.decode_ws
        step = ReplayStep
        make = tuple.__new__  # builds the NamedTuple without its Python-level __new__ frame
        for item in self.reader:
            if item.kind == "ws":
                yield make(
                    step, (item.t_ms, decode_ws(item.payload, item.t_ms), None, item.line_no)
                )
            else:
                yield self.step_of(item)

    def step_of(self, item: RecordItem) -> ReplayStep:
        """One recorded item, decoded (what iterating yields for it)."""
        kind = item.kind
        if kind == "ws":
            return ReplayStep(
                item.t_ms, self.decoder.decode_ws(item.payload, item.t_ms), None, item.line_no
            )
        if kind == "rest":
            return ReplayStep(item.t_ms, self._rest(item.payload, item.t_ms), None, item.line_no)
        mark = item.payload
        events = (
            self.decoder.reset_session(item.t_ms) if mark.get("kind") == WS_RECONNECT_MARK else []
        )
        return ReplayStep(item.t_ms, events, mark, item.line_no)

    def _rest(self, rest: dict[str, Any], t_ms: int) -> list[MarketEvent]:
        status = rest.get("status")
        params = rest.get("params")
        if type(status) is not int:
            self.decoder.note_malformed(
                "rest", f"recorded 'status' is not an integer: {safe_repr(status)}"
            )
            return []
        return self.decoder.decode_rest(
            rest["path"], params if isinstance(params, dict) else {}, status, rest.get("body"), t_ms
        )

    def bytes_read(self) -> int:
        """Bytes of the recording file (compressed, for ``.gz``) consumed so far; compare with
        the file's size on disk for a progress bar."""
        return self.reader.bytes_read()

    def close(self) -> None:
        """Close the recording."""
        self.reader.close()

    def __enter__(self) -> ReplaySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
