"""Kalshi: wire parsing (:mod:`.parse`), sequence checking (:mod:`.sequencer`) and the stateful
frame decoder shared by the live feed and replay (:mod:`.decoder`)."""

from __future__ import annotations

from evoarena.feeds.kalshi.decoder import WS_RECONNECT_MARK, DecoderCounters, KalshiDecoder
from evoarena.feeds.kalshi.parse import (
    CommandReply,
    MalformedFrame,
    RestResult,
    cents_to_micros,
    parse_count,
    parse_dollars,
    parse_rest,
    rest_route,
)
from evoarena.feeds.kalshi.sequencer import Sequencer, Verdict

__all__ = [
    "WS_RECONNECT_MARK",
    "CommandReply",
    "DecoderCounters",
    "KalshiDecoder",
    "MalformedFrame",
    "RestResult",
    "Sequencer",
    "Verdict",
    "cents_to_micros",
    "parse_count",
    "parse_dollars",
    "parse_rest",
    "rest_route",
]
