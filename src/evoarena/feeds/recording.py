"""The recording format, shared by the recorder, ``synth``, ``inspect`` and ``replay``.

JSON Lines, gzip-compressed when the file name ends in ``.gz``:

* line 1, the header: ``{"evoarena_recording": 1, "created_ms": <int>, "source": "<name>", ...}``
  (extra keys allowed);
* then one line per received item, in receive order, each with ``t_ms`` (receive time, ms since
  the epoch) and exactly one of:

  - ``"ws"``: the Kalshi WebSocket message object exactly as received;
  - ``"rest"``: ``{"method", "path", "params", "status", "body"}`` — a REST response as received;
  - ``"mark"``: ``{"kind": ..., ...}`` — an instant at which the live service acted (a tick, a
    settlement check), so a replay can act at exactly the same points.

Reading streams line by line (never the whole file) and reports a bad line as ``file:line: reason``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from evoarena.errors import RecordingError
from evoarena.feeds.guard import DEFAULT_MAX_TIME_JUMP_MS, MAX_LINE_BYTES, check_time, safe_repr

FORMAT_VERSION = 1
MAX_REPORTED_BAD_LINES = 20

ItemKind = Literal["ws", "rest", "mark"]


@dataclass(frozen=True, slots=True)
class RecordItem:
    """One recorded line after the header."""

    line_no: int
    t_ms: int
    kind: ItemKind
    payload: Any
    """The WS message object, the REST dict, or the mark dict."""


def _open_writer(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(file, stream to write): gzip for ``.gz`` with a fixed header (no time stamp, no name).

    Same content ⇒ same bytes, whenever and under whatever name it is written. Level 6 writes
    about 2.7× faster than gzip's default 9 for a file some 6% larger.
    """
    raw = open(path, "wb")  # noqa: SIM115 - closed by RecordingWriter.close
    if not path.name.endswith(".gz"):
        return raw, raw
    zipped: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    return raw, zipped


def sibling_path(path: Path, tag: str) -> Path:
    """``path`` with ``tag`` before its recording suffix: ``a.jsonl.gz`` → ``aTAG.jsonl.gz``."""
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix):
            return path.with_name(f"{name[: -len(suffix)]}{tag}{suffix}")
    return path.with_name(f"{name}{tag}")


class RecordingWriter:
    """Append items to a recording. Use as a context manager; ``flush()`` pushes to the OS.

    Writes are buffered in memory (the feed never waits on the disk); call ``flush()`` at least
    every second (the recorder task does) and ``close()`` on shutdown.
    """

    def __init__(self, path: Path, source: str, created_ms: int, **extra: Any) -> None:
        self.path = path
        self.base_path = path
        """The first segment's path (``path`` moves on when the recording is rotated)."""
        self._raw, self._fh = _open_writer(path)
        self._buf = io.BytesIO()
        self.items = 0
        self.bytes_written = 0
        self._source = source
        self._extra = extra
        self._segment = 0
        self.disabled = False
        """Set by :meth:`disable`: writes are dropped (the disk failed; the feed goes on)."""
        self._write_header(created_ms, 0)

    def _write_header(self, created_ms: int, segment: int) -> None:
        header = {
            "evoarena_recording": FORMAT_VERSION,
            "created_ms": created_ms,
            "source": self._source,
        }
        header.update(self._extra)
        if segment:
            header["segment"] = segment
            header["continues"] = self.base_path.name
        self._emit(orjson.dumps(header))

    def rotate(self, path: Path, created_ms: int) -> None:
        """Close the current file and continue the same stream in ``path`` (a new header).

        Segments replay as one stream when given to ``evoarena replay`` in order.
        """
        self.close()
        self.path = path
        self._raw, self._fh = _open_writer(path)
        self.bytes_written = 0
        self._segment += 1
        self._write_header(created_ms, self._segment)

    def _emit(self, line: bytes) -> None:
        if self.disabled:
            return
        self._buf.write(line)
        self._buf.write(b"\n")
        self.bytes_written += len(line) + 1

    def write_ws(self, t_ms: int, message: Any) -> None:
        """Record a WebSocket message object."""
        self.items += 1
        self._emit(orjson.dumps({"t_ms": t_ms, "ws": message}))

    def write_ws_raw(self, t_ms: int, raw: bytes | str) -> None:
        """Record a WebSocket text frame byte for byte (it must be one JSON object).

        Line breaks in it can only be insignificant JSON whitespace (JSON escapes them inside
        strings); they become spaces so the frame stays on one line.
        """
        data = (raw.encode() if isinstance(raw, str) else raw).strip()
        if b"\n" in data or b"\r" in data:
            data = data.replace(b"\r", b" ").replace(b"\n", b" ")
        self.items += 1
        self._emit(b'{"t_ms":%d,"ws":%s}' % (t_ms, data))

    def write_rest(
        self,
        t_ms: int,
        method: str,
        path: str,
        params: dict[str, Any],
        status: int,
        body: Any,
    ) -> None:
        """Record a REST response (``body`` is the decoded JSON exactly as received)."""
        self.items += 1
        rest = {"method": method, "path": path, "params": params, "status": status, "body": body}
        self._emit(orjson.dumps({"t_ms": t_ms, "rest": rest}))

    def write_mark(self, t_ms: int, kind: str, **fields: Any) -> None:
        """Record an instant at which the service acted (``kind`` = tick, settlement_check ...)."""
        self.items += 1
        self._emit(orjson.dumps({"t_ms": t_ms, "mark": {"kind": kind, **fields}}))

    def flush(self) -> None:
        """Hand buffered lines to the file (and the OS)."""
        data = self._buf.getvalue()
        if data:
            self._fh.write(data)
            self._buf = io.BytesIO()
        self._fh.flush()

    def disable(self) -> None:
        """Stop recording: drop what is buffered, ignore later writes, close the file quietly."""
        self.disabled = True
        self._buf = io.BytesIO()
        for fh in (self._fh, self._raw):
            with contextlib.suppress(OSError):  # the file system already failed
                fh.close()

    def close(self) -> None:
        """Flush and close."""
        if not self._fh.closed:
            self.flush()
            self._fh.close()
        if not self._raw.closed:
            self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingReader:
    """Stream a recording. Iterating yields :class:`RecordItem` for every line after the header.

    With ``skip_bad=False`` the first bad line raises :class:`RecordingError`
    (``file:line: reason``); with ``skip_bad=True`` bad lines are counted in ``bad_count`` and the
    first few messages kept in ``bad_lines``.
    """

    def __init__(
        self,
        path: Path,
        *,
        skip_bad: bool = False,
        max_time_jump_ms: int = DEFAULT_MAX_TIME_JUMP_MS,
    ) -> None:
        self.path = path
        self.skip_bad = skip_bad
        self.max_time_jump_ms = max_time_jump_ms
        self._last_t_ms: int | None = None
        """The latest accepted time (from the header's ``created_ms`` on): jumps count from it."""
        self.bad_count = 0
        self.bad_lines: list[str] = []
        self.lines_read = 0
        self._bytes_read = 0
        try:
            self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 — closed by close()
        except OSError as e:
            raise RecordingError(str(path), 0, f"cannot open: {e.strerror}") from e
        self._fh: IO[bytes] = self._raw
        if path.name.endswith(".gz"):
            unzipped: Any = gzip.GzipFile(fileobj=self._raw, mode="rb")
            self._fh = unzipped  # a GzipFile is an IO[bytes] that typeshed does not declare as one
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise
        created = self.header.get("created_ms")
        if type(created) is int and check_time(created, None, max_time_jump_ms) is None:
            self._last_t_ms = created

    def _read_header(self) -> dict[str, Any]:
        try:
            first = self._fh.readline()
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise RecordingError(str(self.path), 1, f"cannot read: {e}") from e
        self.lines_read = 1
        if not first.strip():
            raise RecordingError(str(self.path), 1, "empty file: no recording header")
        try:
            header = orjson.loads(first)
        except orjson.JSONDecodeError as e:
            raise RecordingError(str(self.path), 1, f"header is not JSON: {e}") from e
        if not isinstance(header, dict) or "evoarena_recording" not in header:
            raise RecordingError(
                str(self.path), 1, "not an evoarena recording (no 'evoarena_recording' header)"
            )
        version = header["evoarena_recording"]
        if version != FORMAT_VERSION:
            raise RecordingError(
                str(self.path),
                1,
                f"unsupported recording version {safe_repr(version)} "
                f"(this evoarena reads version {FORMAT_VERSION})",
            )
        return header

    def _bad(self, line_no: int, reason: str) -> None:
        err = RecordingError(str(self.path), line_no, reason)
        if not self.skip_bad:
            raise err
        self.bad_count += 1
        if len(self.bad_lines) < MAX_REPORTED_BAD_LINES:
            self.bad_lines.append(str(err))

    def __iter__(self) -> Iterator[RecordItem]:
        line_no = 1
        while True:
            try:
                raw = self._fh.readline(MAX_LINE_BYTES + 1)
                too_long = len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n")
                if too_long:
                    self._skip_rest_of_line()
            except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
                self._bad(line_no + 1, f"cannot read: {e}")
                return
            if not raw:
                return
            line_no += 1
            self.lines_read = line_no
            if too_long:
                self._bad(line_no, f"line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if not raw.strip():
                continue
            # Without its newline, as the fused and store paths read it: a line cut off inside
            # a string is then reported the same way on every path.
            item = self._parse(line_no, raw[:-1] if raw.endswith(b"\n") else raw)
            if item is not None:
                yield item

    def _skip_rest_of_line(self) -> None:
        while (chunk := self._fh.readline(1 << 20)) and not chunk.endswith(b"\n"):
            pass

    def _parse(self, line_no: int, raw: bytes) -> RecordItem | None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            self._bad(line_no, f"not valid JSON: {e}")
            return None
        return self._parse_obj(line_no, obj)

    def _parse_obj(self, line_no: int, obj: Any) -> RecordItem | None:
        """:meth:`_parse` of a line already decoded to ``obj`` (valid JSON)."""
        if not isinstance(obj, dict):
            self._bad(line_no, "a recording line must be a JSON object")
            return None
        t_ms = obj.get("t_ms")
        if not isinstance(t_ms, int) or isinstance(t_ms, bool):
            self._bad(line_no, "missing or non-integer 't_ms'")
            return None
        if (refused := check_time(t_ms, self._last_t_ms, self.max_time_jump_ms)) is not None:
            self._bad(line_no, refused)
            return None
        kinds = [k for k in ("ws", "rest", "mark") if k in obj]
        if len(kinds) != 1:
            self._bad(line_no, "a line needs exactly one of 'ws', 'rest' or 'mark'")
            return None
        kind: ItemKind = kinds[0]  # type: ignore[assignment]  # narrowed by the list above
        payload = obj[kind]
        if not isinstance(payload, dict):
            self._bad(line_no, f"'{kind}' must be a JSON object")
            return None
        if kind == "rest" and not isinstance(payload.get("path"), str):
            self._bad(line_no, "'rest' needs a string 'path'")
            return None
        if kind == "mark" and not isinstance(payload.get("kind"), str):
            self._bad(line_no, "'mark' needs a string 'kind'")
            return None
        if self._last_t_ms is None or t_ms > self._last_t_ms:
            self._last_t_ms = t_ms  # the high-water mark: an odd early time cannot lower it
        return RecordItem(line_no, t_ms, kind, payload)

    def bytes_read(self) -> int:
        """Bytes of the file itself (compressed, for ``.gz``) consumed so far: progress against
        the file's size on disk. Read-ahead buffering makes it run slightly ahead of the line
        last yielded; after ``close()`` it keeps its last value."""
        if not self._raw.closed:
            self._bytes_read = self._raw.tell()
        return self._bytes_read

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._raw.closed:
            self._bytes_read = self._raw.tell()
        self._fh.close()
        self._raw.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
