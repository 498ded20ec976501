"""Classify and parse the fused replay's hot lines in bulk, compiled with numba.

:class:`HotScanner` takes a buffer of complete recording lines and, for each line, says whether
it is a hot frame — ``orderbook_delta``, ``ticker`` or ``trade`` — in the exact common shape,
with its fields parsed (about 3x cheaper than ``orjson.loads`` and the fused loop's Python
classification); every other line is left to the caller's ``orjson`` path.

Contract (what :mod:`evoarena.feeds.fused` relies on): a line is accepted only if it is valid
JSON that ``orjson.loads`` turns into ``{"t_ms": int >= 0, "ws": {...}}`` and the fused loop's
own classification of that object would take it with the very same values; the time's upper
limit and the sequence number's continuity depend on earlier lines and stay the caller's checks.
A strict subset of JSON is accepted — no whitespace, no escapes, printable ASCII strings,
integers of at most 18 digits, no nesting beyond ``ws.msg``, no repeated key that matters — and
anything else refused. Refusing is always safe (the caller decides such a line exactly as
before), so the scanner only needs to be right about what it accepts. Prices and counts are
parsed exactly as :mod:`evoarena.feeds.kalshi.numbers` does for the shapes accepted here.

How: the first line of each shape is parsed key by key and, if hot, kept as a template (its keys
and punctuation literal, its values holes); later lines are compared against the templates
eight bytes at a time, their values checked by kind (string, integer, other scalar). Tickers are
interned (ids into :attr:`HotScanner.tickers`). The compiled code is cached on disk beside this
module (or in the user's cache directory); the first use after an install compiles it (a few
seconds).

Without numba (an ``ImportError``), :data:`AVAILABLE` is False and the fused loop reads every
line through ``orjson``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

try:
    from llvmlite import ir  # type: ignore[import-untyped]  # ships no type information
    from numba import njit, types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the module importable
    AVAILABLE = False
else:
    AVAILABLE = True
"""Whether numba is there (else the fused loop reads every line through ``orjson``)."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """``fn`` compiled (cached on disk beside this module) when numba is there."""
    if not AVAILABLE:  # pragma: no cover
        return fn
    return cast("_F", njit(cache=True, nogil=True, boundscheck=False)(fn))


def _load_u64_py(arr: Any, idx: int) -> Any:
    """The 8 bytes of a uint8 array at ``idx`` (any alignment) as a little-endian uint64; the
    caller keeps ``idx + 8`` within the array. (Compiled: one unaligned load.)"""
    return np.uint64(int.from_bytes(bytes(arr[idx : idx + 8]), "little"))


def _load_u64_intrinsic() -> Callable[[Any, int], Any]:
    """:func:`_load_u64_py` as a numba intrinsic."""

    @intrinsic
    def load_u64(typingctx: Any, arr: Any, idx: Any) -> Any:
        sig = types.uint64(arr, types.intp)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.gep(ary.data, [args[1]])
            return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)

        return sig, codegen

    return cast("Callable[[Any, int], Any]", load_u64)


load_u64 = _load_u64_intrinsic() if AVAILABLE else _load_u64_py


_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)
_QUOTES = np.uint64(0x2222222222222222)
_BACKSLASHES = np.uint64(0x5C5C5C5C5C5C5C5C)
_DELS = np.uint64(0x7F7F7F7F7F7F7F7F)
_SPACES = np.uint64(0x2020202020202020)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

# Line kinds (0: refused, the caller's ``orjson`` path decides).
DELTA_YES = 1
DELTA_NO = 2
TICKER = 3
TRADE = 4

_SLOTS = 1 << 17
"""Hash slots of the ticker intern table (at most half used)."""
_MAX_TICKERS = _SLOTS // 2
_POOL_BYTES = 1 << 22
"""Bytes of distinct tickers the intern table keeps (beyond, a new ticker's lines are refused)."""
_MAX_TEMPLATES = 16
"""Line shapes learned per run (beyond: parsed key by key, slower)."""
_MAX_HOLES = 64
"""Values of a line a template has at most."""
_TEMPLATE_BYTES = 1 << 16
"""Literal bytes of all templates together."""

# Keys the scanner tells apart; every other key's value is only checked for shape.
_KEYS = (
    b"type",
    b"sid",
    b"seq",
    b"msg",
    b"market_ticker",
    b"side",
    b"price_dollars",
    b"delta_fp",
    b"yes_bid_dollars",
    b"yes_ask_dollars",
    b"volume_fp",
    b"open_interest_fp",
    b"yes_price_dollars",
    b"count_fp",
)
(
    K_TYPE,
    K_SID,
    K_SEQ,
    K_MSG,
    K_TICKER,
    K_SIDE,
    K_PRICE,
    K_DELTA,
    K_BID,
    K_ASK,
    K_VOLUME,
    K_OI,
    K_YES_PRICE,
    K_COUNT,
) = range(len(_KEYS))
_N_KEYS = len(_KEYS)
_KEY_BYTES = np.frombuffer(b"".join(_KEYS), dtype=np.uint8)


def _key_hash(n: int, first: int, fifth: int, penultimate: int) -> int:
    """A slot of :data:`_KEY_LUT`: distinct for the known keys (checked at import)."""
    return (n * 31 + first * 5 + fifth * 11 + penultimate) & 127


_KEY_LUT = np.full(128, -1, dtype=np.int64)
for _k, _key in enumerate(_KEYS):
    _slot = _key_hash(len(_key), _key[0], _key[min(4, len(_key) - 1)], _key[-2])
    if _KEY_LUT[_slot] >= 0:  # pragma: no cover - guards an edit of _KEYS
        raise ImportError("hotscan: two keys share a slot of _KEY_LUT")
    _KEY_LUT[_slot] = _k
_key_hash_jit = _jit(_key_hash)
_KEY_START = np.cumsum([0, *(len(k) for k in _KEYS)]).astype(np.int64)
_PREFIX = np.frombuffer(b'{"t_ms":', dtype=np.uint8)
_WS_OPEN = np.frombuffer(b',"ws":{', dtype=np.uint8)
_T_DELTA = np.frombuffer(b'"orderbook_delta"', dtype=np.uint8)
_T_TICKER = np.frombuffer(b'"ticker"', dtype=np.uint8)
_T_TRADE = np.frombuffer(b'"trade"', dtype=np.uint8)


@_jit
def lit(buf: Any, i: int, e: int, lit_: Any) -> int:
    """Index after the literal ``lit_`` at ``i``, else -1."""
    n = lit_.shape[0]
    if i + n > e:
        return -1
    for k in range(n):
        if buf[i + k] != lit_[k]:
            return -1
    return int(i + n)


@_jit
def string_end(buf: Any, i: int, e: int) -> int:
    """Index after a plain string (printable ASCII, no escapes) at ``i``, else -1."""
    if i >= e or buf[i] != 34:
        return -1
    i += 1
    while i < e:
        if i + 8 <= e:
            # Eight plain bytes at once: none >= 0x80, a quote, a backslash, DEL or < 0x20
            # (exact "any byte" tests; a flagged word is looked at byte by byte).
            w = load_u64(buf, i)
            bad = (
                (w & _HIGH)
                | ((w ^ _QUOTES) - _ONES) & ~(w ^ _QUOTES) & _HIGH
                | ((w ^ _BACKSLASHES) - _ONES) & ~(w ^ _BACKSLASHES) & _HIGH
                | ((w ^ _DELS) - _ONES) & ~(w ^ _DELS) & _HIGH
                | (w - _SPACES) & ~w & _HIGH
            )
            if bad == 0:
                i += 8
                continue
        c = buf[i]
        if c == 34:
            return i + 1
        if c < 32 or c > 126 or c == 92:
            return -1
        i += 1
    return -1


@_jit
def int_end(buf: Any, i: int, e: int) -> int:
    """Index after a JSON integer of at most 18 digits at ``i``, else -1."""
    if i < e and buf[i] == 45:  # "-"
        i += 1
    if i >= e:
        return -1
    c = buf[i]
    if c == 48:  # "0": no leading zeros
        return i + 1
    if c < 49 or c > 57:
        return -1
    s = i
    while i < e and 48 <= buf[i] <= 57:
        i += 1
    if i - s > 18:
        return -1
    return i


@_jit
def scalar_end(buf: Any, i: int, e: int) -> int:
    """Index after a plain string, an integer, ``true``, ``false`` or ``null``; else -1."""
    if i >= e:
        return -1
    c = buf[i]
    if c == 34:
        return string_end(buf, i, e)
    if c == 45 or 48 <= c <= 57:
        return int_end(buf, i, e)
    if c == 116:  # true
        if i + 4 <= e and buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101:
            return i + 4
        return -1
    if c == 102:  # false
        if (
            i + 5 <= e
            and buf[i + 1] == 97
            and buf[i + 2] == 108
            and buf[i + 3] == 115
            and buf[i + 4] == 101
        ):
            return i + 5
        return -1
    if c == 110:  # null
        if i + 4 <= e and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
            return i + 4
        return -1
    return -1


@_jit
def key_id(buf: Any, s: int, e: int) -> int:
    """Which of the known keys the string ``buf[s:e]`` (quotes excluded) is; -1: none."""
    n = e - s
    if n < 3:
        return -1
    k = _KEY_LUT[_key_hash_jit(n, buf[s], buf[s + min(4, n - 1)], buf[e - 2])]
    if k < 0:
        return -1
    a = _KEY_START[k]
    if _KEY_START[k + 1] - a != n:
        return -1
    for j in range(n):
        if buf[s + j] != _KEY_BYTES[a + j]:
            return -1
    return int(k)


@_jit
def uint_value(buf: Any, s: int, e: int) -> int:
    """The value of a non-negative integer span (validated by int_end); -1 if negative."""
    if buf[s] == 45:
        return -1
    v = 0
    for i in range(s, e):
        v = v * 10 + (buf[i] - 48)
    return v


@_jit
def price_value(buf: Any, s: int, e: int) -> int:
    """Micro-dollars of a quoted ``digits[.1-6 digits]`` price in [0, 1] dollars, else -1."""
    i = s + 1
    e -= 1
    v = 0
    n = 0
    while i < e and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        n += 1
        i += 1
        if n > 7:
            return -1
    if n == 0:
        return -1
    v *= 1_000_000
    if i < e:
        if buf[i] != 46:
            return -1
        i += 1
        f = 0
        m = 0
        while i < e and 48 <= buf[i] <= 57:
            f = f * 10 + (buf[i] - 48)
            m += 1
            i += 1
        if m == 0 or m > 6 or i != e:
            return -1
        for _ in range(6 - m):
            f *= 10
        v += f
    if v > 1_000_000:
        return -1
    return v


@_jit
def count_value(buf: Any, s: int, e: int) -> tuple[bool, int]:
    """(ok, centi-contracts) of a quoted ``-?digits{1,11}[.1-2 digits]`` count."""
    i = s + 1
    e -= 1
    neg = i < e and buf[i] == 45
    if neg:
        i += 1
    v = 0
    n = 0
    while i < e and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        n += 1
        i += 1
    if n == 0 or n > 11:
        return False, 0
    v *= 100
    if i < e:
        if buf[i] != 46:
            return False, 0
        i += 1
        f = 0
        m = 0
        while i < e and 48 <= buf[i] <= 57:
            f = f * 10 + (buf[i] - 48)
            m += 1
            i += 1
        if m == 0 or m > 2 or i != e:
            return False, 0
        v += f * 10 if m == 1 else f
    return True, -v if neg else v


@_jit
def word_at(buf: Any, i: int, size: int) -> Any:
    """:func:`load_u64` at ``i``; near the end of ``buf`` the bytes past it read as zeros."""
    if i + 8 <= size:
        return load_u64(buf, i)
    w = np.uint64(0)
    for k in range(size - 1, i - 1, -1):
        w = (w << np.uint64(8)) | np.uint64(buf[k])
    return w


@_jit
def intern(buf: Any, s: int, e: int, slots: Any, pool: Any, meta: Any, offs: Any) -> int:
    """Id of the ticker ``buf[s:e]``, added when new; -1 when the table is full."""
    n = e - s
    size = buf.shape[0]
    h = _FNV_OFFSET  # FNV-1a over 8-byte words
    k = 0
    while k < n:
        w = word_at(buf, s + k, size)
        if n - k < 8:
            w &= (np.uint64(1) << np.uint64(8 * (n - k))) - np.uint64(1)
        h = (h ^ w) * _FNV_PRIME
        k += 8
    mask = slots.shape[0] - 1
    j = int(h >> np.uint64(32)) & mask
    while True:
        tid = slots[j]
        if tid < 0:
            break
        a = offs[tid]
        if offs[tid + 1] - a == n:
            same = True
            k = 0
            while k < n:
                diff = load_u64(pool, a + k) ^ word_at(buf, s + k, size)
                if n - k < 8:
                    diff &= (np.uint64(1) << np.uint64(8 * (n - k))) - np.uint64(1)
                if diff != 0:
                    same = False
                    break
                k += 8
            if same:
                return int(tid)
        j = (j + 1) & mask
    count = meta[0]
    used = offs[count]
    if count >= offs.shape[0] - 2 or used + n + 8 > pool.shape[0]:
        return -1
    for k in range(n):
        pool[used + k] = buf[s + k]
    offs[count + 1] = used + n
    slots[j] = count
    meta[0] = count + 1
    return int(count)


@_jit
def scan(  # noqa: C901 - one compiled loop, on purpose
    buf: Any,
    out: Any,
    spans: Any,
    holes: Any,
    tpl_lit: Any,
    tpl_seg: Any,
    tpl_n: Any,
    tpl_type: Any,
    slots: Any,
    pool: Any,
    meta: Any,
    offs: Any,
) -> int:
    """Fill ``out[:, line]`` (the rows of :meth:`HotScanner.scan`) for the newline-terminated
    lines of ``buf``; returns their number, or -1 if ``out`` has too few columns."""
    size = buf.shape[0]
    pos = 0
    n_keys = spans.shape[0]
    line = -1
    while pos < size:
        line += 1
        if line >= out.shape[1]:
            return -1
        s = pos
        out[0, line] = 0
        out[7, line] = s
        e = -1  # the line's end, once known
        ok = False
        learn = -1  # holes of a generic parse to learn a template from
        t = 0
        tcode = 0
        # {"t_ms":<non-negative int>
        i = lit(buf, s, size, _PREFIX)
        j = int_end(buf, i, size) if i >= 0 else -1
        if j >= 0 and buf[i] != 45:
            t = uint_value(buf, i, j)
            for k in range(n_keys):
                spans[k, 0] = -1
            # The rest of the line against each learned template: its literal bytes (keys and
            # punctuation) must be equal, its holes (values) of the same kind.
            for tp in range(meta[1]):
                q = j
                good = True
                for g in range(tpl_n[tp]):
                    ls = tpl_seg[tp, g, 0]
                    ln = tpl_seg[tp, g, 1]
                    if q + ln + 8 <= size:  # eight bytes at a time, the last word masked
                        x = 0
                        while x + 8 <= ln:
                            if load_u64(buf, q + x) != load_u64(tpl_lit, ls + x):
                                good = False
                                break
                            x += 8
                        if good and x < ln:
                            mask = (np.uint64(1) << np.uint64(8 * (ln - x))) - np.uint64(1)
                            diff = load_u64(buf, q + x) ^ load_u64(tpl_lit, ls + x)
                            good = (diff & mask) == 0
                    elif q + ln > size:
                        good = False
                    else:
                        for x in range(ln):
                            if buf[q + x] != tpl_lit[ls + x]:
                                good = False
                                break
                    if not good:
                        break
                    q += ln
                    hk = tpl_seg[tp, g, 2]
                    if hk == 0:
                        continue
                    if hk == 1:
                        r = string_end(buf, q, size)
                    elif hk == 2:
                        r = int_end(buf, q, size)
                    else:
                        r = scalar_end(buf, q, size)
                    if r < 0:
                        good = False
                        break
                    kid = tpl_seg[tp, g, 3]
                    if kid >= 0:
                        spans[kid, 0] = q
                        spans[kid, 1] = r
                    q = r
                if good and q < size and buf[q] == 10:
                    ok = True
                    e = q
                    tcode = tpl_type[tp]
                    break
                for k in range(n_keys):
                    spans[k, 0] = -1
            if not ok:
                e = s
                while e < size and buf[e] != 10:
                    e += 1
                n_holes = parse_generic(buf, j, e, spans, holes)
                if n_holes >= -1:
                    ok = True
                    learn = n_holes
                    tcode = type_code(buf, spans)
        if e < 0:
            e = s
            while e < size and buf[e] != 10:
                e += 1
        pos = e + 1
        if not ok:
            continue
        kind = classify(buf, spans, out, line, tcode)
        if kind == 0:
            continue
        ks, ke = spans[K_TICKER, 0], spans[K_TICKER, 1]
        tid = intern(buf, ks + 1, ke - 1, slots, pool, meta, offs)
        if tid < 0:
            continue
        out[0, line] = kind
        out[1, line] = t
        out[2, line] = tid
        if learn >= 0:
            learn_template(buf, j, e, holes, learn, tcode, tpl_lit, tpl_seg, tpl_n, tpl_type, meta)
    return line + 1


@_jit
def parse_generic(buf: Any, i: int, e: int, spans: Any, holes: Any) -> int:  # noqa: C901
    """Parse ``,"ws":{...}}`` in ``buf[i:e]`` (the rest of a line after its time), filling the
    spans of the known keys; the number of holes (values but the type) recorded in ``holes``
    (-1 if there are more than it holds: nothing to learn), or -2 if the line is refused."""
    i = lit(buf, i, e, _WS_OPEN)
    if i < 0:
        return -2
    in_msg = False
    seen_msg = False
    n = 0
    cap = holes.shape[0]
    # Members of ws, then of msg (flat), until ws closes.
    while True:
        ke = string_end(buf, i, e)
        if ke < 0 or ke >= e or buf[ke] != 58:  # ":"
            return -2
        kid = key_id(buf, i + 1, ke - 1)
        i = ke + 1
        if not in_msg and kid == K_MSG:  # msg: an object
            if seen_msg or i >= e or buf[i] != 123:
                return -2
            seen_msg = True
            in_msg = True
            i += 1
            continue
        ve = scalar_end(buf, i, e)
        if ve < 0:
            return -2
        own = kid >= 0 and (kid <= K_MSG) != in_msg
        if own:
            if spans[kid, 0] >= 0:  # a repeated key that matters
                return -2
            spans[kid, 0] = i
            spans[kid, 1] = ve
        if not (own and kid == K_TYPE):  # the type is part of a template, not a hole
            if n < cap:
                c = buf[i]
                holes[n, 0] = i
                holes[n, 1] = ve
                holes[n, 2] = 1 if c == 34 else (2 if c == 45 or 48 <= c <= 57 else 3)
                holes[n, 3] = kid if own else -1
            n += 1
        i = ve
        if i >= e:
            return -2
        c = buf[i]
        if c == 44:  # ","
            i += 1
            continue
        if c != 125:  # "}"
            return -2
        i += 1
        if in_msg:  # msg closed: more ws members, or ws closes
            in_msg = False
            if i < e and buf[i] == 44:
                i += 1
                continue
            if i < e and buf[i] == 125:
                i += 1
                break
            return -2
        break  # ws closed
    # ... and the top-level object closes at the end of the line.
    if not seen_msg or i + 1 != e or buf[i] != 125:
        return -2
    return n if n <= cap else -1


@_jit
def learn_template(
    buf: Any,
    j: int,
    e: int,
    holes: Any,
    n: int,
    tcode: int,
    tpl_lit: Any,
    tpl_seg: Any,
    tpl_n: Any,
    tpl_type: Any,
    meta: Any,
) -> None:
    """Keep ``buf[j:e]`` (a line accepted by the generic parse) as a template, if there is room:
    its bytes but the holes are literal."""
    tp = meta[1]
    used = meta[2]
    room = tpl_lit.shape[0] - 8  # (a word read past a literal stays inside)
    if tp >= tpl_seg.shape[0] or n + 1 > tpl_seg.shape[1] or used + (e - j) > room:
        return
    prev = j
    for h in range(n + 1):
        end = holes[h, 0] if h < n else e
        ln = end - prev
        for x in range(ln):
            tpl_lit[used + x] = buf[prev + x]
        tpl_seg[tp, h, 0] = used
        tpl_seg[tp, h, 1] = ln
        tpl_seg[tp, h, 2] = holes[h, 2] if h < n else 0
        tpl_seg[tp, h, 3] = holes[h, 3] if h < n else -1
        used += ln
        if h < n:
            prev = holes[h, 1]
    tpl_n[tp] = n + 1
    tpl_type[tp] = tcode
    meta[1] = tp + 1
    meta[2] = used


@_jit
def type_code(buf: Any, spans: Any) -> int:
    """1, 2, 3 for a type ``orderbook_delta``, ``ticker``, ``trade``; else 0."""
    ts, te = spans[K_TYPE, 0], spans[K_TYPE, 1]
    if ts < 0:
        return 0
    if lit(buf, ts, te, _T_DELTA) == te:
        return 1
    if lit(buf, ts, te, _T_TICKER) == te:
        return 2
    if lit(buf, ts, te, _T_TRADE) == te:
        return 3
    return 0


@_jit
def classify(buf: Any, spans: Any, out: Any, line: int, tcode: int) -> int:  # noqa: C901
    """The kind of a parsed line of type ``tcode`` (see type_code) from its known keys' spans
    (0: not a hot frame in the common shape), its fields written to ``out[3:, line]``; the
    fused loop's classification."""
    ks, ke = spans[K_TICKER, 0], spans[K_TICKER, 1]
    if ks < 0 or buf[ks] != 34 or ke - ks < 3:
        return 0
    has_seq = spans[K_SEQ, 0] >= 0
    if tcode == 1:
        ss, sq, sd = spans[K_SID, 0], spans[K_SEQ, 0], spans[K_SIDE, 0]
        pr, dl = spans[K_PRICE, 0], spans[K_DELTA, 0]
        if ss < 0 or sq < 0 or sd < 0 or pr < 0 or dl < 0:
            return 0
        if buf[ss] == 34 or buf[sq] == 34 or buf[ss] > 57 or buf[sq] > 57:
            return 0  # sid and seq must be integers
        sid = uint_value(buf, ss, spans[K_SID, 1])
        seq = uint_value(buf, sq, spans[K_SEQ, 1])
        if sid < 0 or seq < 0:
            return 0
        sde = spans[K_SIDE, 1]
        if sde - sd == 5 and buf[sd + 1] == 121 and buf[sd + 2] == 101 and buf[sd + 3] == 115:
            kind = DELTA_YES
        elif sde - sd == 4 and buf[sd + 1] == 110 and buf[sd + 2] == 111:
            kind = DELTA_NO
        else:
            return 0
        if buf[pr] != 34 or buf[dl] != 34:
            return 0
        price = price_value(buf, pr, spans[K_PRICE, 1])
        if price < 0:
            return 0
        good, delta = count_value(buf, dl, spans[K_DELTA, 1])
        if not good:
            return 0
        out[3, line] = sid
        out[4, line] = seq
        out[5, line] = price
        out[6, line] = delta
        return kind
    if tcode == 2:
        if has_seq:
            return 0
        pr, bid, ask = spans[K_PRICE, 0], spans[K_BID, 0], spans[K_ASK, 0]
        vol, oi = spans[K_VOLUME, 0], spans[K_OI, 0]
        if pr < 0 or bid < 0 or ask < 0 or vol < 0 or oi < 0:
            return 0
        if buf[pr] != 34 or buf[bid] != 34 or buf[ask] != 34 or buf[vol] != 34 or buf[oi] != 34:
            return 0
        price = price_value(buf, pr, spans[K_PRICE, 1])
        if price < 0:
            return 0
        if price_value(buf, bid, spans[K_BID, 1]) < 0 or price_value(buf, ask, spans[K_ASK, 1]) < 0:
            return 0
        good, _ = count_value(buf, vol, spans[K_VOLUME, 1])
        if not good:
            return 0
        good, oi_v = count_value(buf, oi, spans[K_OI, 1])
        if not good:
            return 0
        out[4, line] = oi_v
        out[5, line] = price
        return TICKER
    if tcode == 3:
        if has_seq:
            return 0
        pr, cn = spans[K_YES_PRICE, 0], spans[K_COUNT, 0]
        if pr < 0 or cn < 0 or buf[pr] != 34 or buf[cn] != 34:
            return 0
        price = price_value(buf, pr, spans[K_YES_PRICE, 1])
        if price < 0:
            return 0
        good, _ = count_value(buf, cn, spans[K_COUNT, 1])
        if not good:
            return 0
        out[5, line] = price
        return TRADE
    return 0


class HotScanner:
    """The compiled scanner with its ticker intern table (one per replay run)."""

    def __init__(self) -> None:
        self._slots = np.full(_SLOTS, -1, dtype=np.int64)
        self._pool = np.zeros(_POOL_BYTES, dtype=np.uint8)
        self._meta = np.zeros(3, dtype=np.int64)  # tickers, templates, template bytes
        self._offs = np.zeros(_MAX_TICKERS + 2, dtype=np.int64)
        self._spans = np.zeros((_N_KEYS, 2), dtype=np.int64)
        self._holes = np.zeros((_MAX_HOLES, 4), dtype=np.int64)
        self._tpl_lit = np.zeros(_TEMPLATE_BYTES, dtype=np.uint8)
        self._tpl_seg = np.zeros((_MAX_TEMPLATES, _MAX_HOLES + 1, 4), dtype=np.int64)
        self._tpl_n = np.zeros(_MAX_TEMPLATES, dtype=np.int64)
        self._tpl_type = np.zeros(_MAX_TEMPLATES, dtype=np.int64)
        self._out = np.zeros((8, 1 << 14), dtype=np.int64)
        self.tickers: list[str] = []
        """Interned tickers by id."""
        self.starts: Any = self._out[7]
        """Where each line of the last :meth:`scan` begins in its buffer (an array)."""

    def scan(self, data: bytes) -> list[list[int]]:
        """Rows kind, t, ticker id, sid, seq, price, delta (one entry per line) of the lines of
        ``data`` (each ending in a newline): kinds 1 and 2 are deltas on the yes and no side, 3
        a ticker (its open interest in the seq row), 4 a trade. Fields a refused line (kind 0)
        or a kind does not use are undefined. Where the lines begin: :attr:`starts`."""
        buf = np.frombuffer(data, dtype=np.uint8)
        while (
            n_lines := scan(
                buf,
                self._out,
                self._spans,
                self._holes,
                self._tpl_lit,
                self._tpl_seg,
                self._tpl_n,
                self._tpl_type,
                self._slots,
                self._pool,
                self._meta,
                self._offs,
            )
        ) < 0:  # more lines than columns: again, wider (interning and learning are idempotent)
            self._out = np.zeros((8, 2 * self._out.shape[1]), dtype=np.int64)
        out = self._out
        known = len(self.tickers)
        count = int(self._meta[0])
        if count > known:
            offs, pool = self._offs, self._pool
            self.tickers.extend(
                pool[offs[k] : offs[k + 1]].tobytes().decode("ascii") for k in range(known, count)
            )
        self.starts = out[7, :n_lines]
        rows: list[list[int]] = out[:7, :n_lines].tolist()
        return rows
