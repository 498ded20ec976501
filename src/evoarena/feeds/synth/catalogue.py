"""The series catalogue: how each category behaves, its series and teams, tick grids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evoarena.feeds.synth.common import ONE

# -- tick structures ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ticks:
    name: str
    grid: tuple[int, ...]
    """Every valid price strictly between 0 and 1, ascending (micro-dollars); symmetric."""
    ranges: tuple[dict[str, str], ...]


_LINEAR = _Ticks(
    "linear_cent",
    tuple(range(10_000, ONE, 10_000)),
    ({"end": "1.0000", "start": "0.0000", "step": "0.0100"},),
)
_TAPERED = _Ticks(
    "tapered_deci_cent",
    tuple(range(1_000, 100_000, 1_000))
    + tuple(range(100_000, 900_001, 10_000))
    + tuple(range(901_000, ONE, 1_000)),
    (
        {"end": "0.1000", "start": "0.0000", "step": "0.0010"},
        {"end": "0.9000", "start": "0.1000", "step": "0.0100"},
        {"end": "1.0000", "start": "0.9000", "step": "0.0010"},
    ),
)


# -- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Profile:
    """How the events of one category behave."""

    category: str
    weight: float
    markets: tuple[int, int]
    life_hours: tuple[float, float]
    in_window: float
    """Probability that an event closes inside the window."""
    final_minutes: float
    final_weight: float
    """Share of the information arriving linearly over the last ``final_minutes`` before close."""
    resolve_weight: float
    """Share of the information revealed only between close and determination."""
    news_per_hour: float
    tapered: float
    """Probability that a market uses ``tapered_deci_cent`` ticks."""
    fractional: float
    settle_secs: tuple[int, ...]
    frequency: str
    fee_type: str


@dataclass(frozen=True, slots=True)
class _Series:
    ticker: str
    title: str
    subject: str
    profile: _Profile
    level: float
    step: float
    decimals: int
    unit: str
    """Format of a strike for people, e.g. ``"${:,.0f}"``."""
    hourly: bool = False
    fee_multiplier: float = 1
    tags: tuple[str, ...] = ()
    league: str = ""
    """Non-empty for one-market game events (the team list key)."""
    source: tuple[str, str] = ("Kalshi", "https://kalshi.com")


_CRYPTO = _Profile("Crypto", 0.09, (4, 8), (1, 1), 0.97, 15, 0.25, 0.0, 1.0, 0.5, 0.6,
                   (300, 600), "hourly", "quadratic")  # fmt: skip
_FIN = _Profile("Financials", 0.10, (3, 6), (20, 30), 0.85, 120, 0.45, 0.0, 0.6, 0.3, 0.3,
                (600, 1800), "daily", "quadratic")  # fmt: skip
_SPORTS = _Profile("Sports", 0.43, (1, 1), (24, 120), 0.8, 150, 0.75, 0.02, 0.2, 0.0, 0.2,
                   (900, 1800), "daily", "quadratic_with_maker_fees")  # fmt: skip
_WEATHER = _Profile("Climate and Weather", 0.10, (3, 6), (24, 36), 0.85, 360, 0.5, 0.15, 0.3,
                    0.2, 0.1, (1800, 3600), "daily", "quadratic")  # fmt: skip
_ECON = _Profile("Economics", 0.09, (3, 6), (48, 400), 0.6, 60, 0.1, 0.5, 0.2, 0.3, 0.3,
                 (600, 1800), "weekly", "quadratic")  # fmt: skip
_POLITICS = _Profile("Politics", 0.19, (2, 5), (24, 600), 0.5, 720, 0.3, 0.3, 0.4, 0.2, 0.2,
                     (1800, 3600), "weekly", "quadratic")  # fmt: skip

_BLS = ("Bureau of Labor Statistics", "https://www.bls.gov")
_NWS = ("National Weather Service", "https://www.weather.gov")
_CATALOGUE: tuple[_Series, ...] = (
    _Series("KXBTCD", "Bitcoin price", "the Bitcoin price", _CRYPTO, 97_000, 250, 0, "${:,.0f}",
            hourly=True, tags=("BTC",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXETHD", "Ethereum price", "the Ethereum price", _CRYPTO, 3_400, 20, 0, "${:,.0f}",
            hourly=True, tags=("ETH",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXSOLD", "Solana price", "the Solana price", _CRYPTO, 190, 2, 0, "${:,.0f}",
            hourly=True, tags=("SOL",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXINXD", "S&P 500 daily close", "the S&P 500 close", _FIN, 6_100, 25, 0, "{:,.0f}",
            fee_multiplier=0.5, tags=("Indices",)),
    _Series("KXNASDAQ100D", "Nasdaq-100 daily close", "the Nasdaq-100 close", _FIN, 21_500, 100,
            0, "{:,.0f}", fee_multiplier=0.5, tags=("Indices",)),
    _Series("KXWTID", "WTI crude oil price", "the WTI front-month price", _FIN, 71.5, 0.5, 2,
            "${:,.2f}", tags=("Oil",)),
    _Series("KXUSDJPYH", "USD/JPY hourly", "the USD/JPY rate", _FIN, 150.2, 0.1, 1, "{:,.1f}",
            hourly=True, tags=("FX",)),
    _Series("KXNBAGAME", "NBA game", "", _SPORTS, 0, 0, 0, "", league="NBA", tags=("Basketball",)),
    _Series("KXNHLGAME", "NHL game", "", _SPORTS, 0, 0, 0, "", league="NHL", tags=("Hockey",)),
    _Series("KXNCAAMBGAME", "College basketball game", "", _SPORTS, 0, 0, 0, "", league="NCAAB",
            tags=("Basketball",)),
    _Series("KXEPLGAME", "Premier League game", "", _SPORTS, 0, 0, 0, "", league="EPL",
            tags=("Soccer",)),
    _Series("KXHIGHNY", "Highest temperature in NYC", "the highest temperature in Central Park",
            _WEATHER, 44, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHCHI", "Highest temperature in Chicago", "the highest temperature at Midway",
            _WEATHER, 38, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHMIA", "Highest temperature in Miami", "the highest temperature in Miami",
            _WEATHER, 79, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHLAX", "Highest temperature in Los Angeles", "the highest temperature at LAX",
            _WEATHER, 66, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHAUS", "Highest temperature in Austin", "the highest temperature in Austin",
            _WEATHER, 70, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHDEN", "Highest temperature in Denver", "the highest temperature in Denver",
            _WEATHER, 50, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXJOBLESSCLAIMS", "Initial jobless claims", "initial jobless claims", _ECON,
            225_000, 5_000, 0, "{:,.0f}", tags=("Jobs",), source=_BLS),
    _Series("KXGASPRICE", "US gas price", "the AAA national average gas price", _ECON, 3.10,
            0.02, 2, "${:.2f}", tags=("Energy",), source=("AAA", "https://gasprices.aaa.com")),
    _Series("KXCPIYOY", "CPI year over year", "CPI inflation year over year", _ECON, 2.8, 0.1, 1,
            "{:.1f}%", tags=("Inflation",), source=_BLS),
    _Series("KXMORTGAGERATE", "30-year mortgage rate", "the 30-year fixed mortgage rate", _ECON,
            6.6, 0.05, 2, "{:.2f}%", tags=("Housing",), source=("Freddie Mac", "https://www.freddiemac.com")),
    _Series("KXAPPROVAL", "Presidential approval", "the presidential approval rating", _POLITICS,
            44, 0.5, 1, "{:.1f}%", tags=("Polls",), source=("RealClearPolling", "https://www.realclearpolling.com")),
    _Series("KXTRUTHSOCIAL", "Truth Social posts", "the number of Truth Social posts", _POLITICS,
            20, 5, 0, "{:.0f}", tags=("Social media",)),
    _Series("KXEOCOUNT", "Executive orders", "the number of executive orders signed", _POLITICS,
            6, 1, 0, "{:.0f}", tags=("White House",), source=("Federal Register", "https://www.federalregister.gov")),
)  # fmt: skip

_TEAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "NBA": (("BOS", "Boston"), ("LAL", "Los Angeles L"), ("GSW", "Golden State"),
            ("MIL", "Milwaukee"), ("DEN", "Denver"), ("PHX", "Phoenix"), ("MIA", "Miami"),
            ("NYK", "New York"), ("DAL", "Dallas"), ("OKC", "Oklahoma City"),
            ("CLE", "Cleveland"), ("MIN", "Minnesota")),
    "NHL": (("BOS", "Boston"), ("TOR", "Toronto"), ("NYR", "New York R"), ("EDM", "Edmonton"),
            ("COL", "Colorado"), ("FLA", "Florida"), ("DAL", "Dallas"), ("VGK", "Vegas"),
            ("CAR", "Carolina"), ("WPG", "Winnipeg")),
    "NCAAB": (("DUKE", "Duke"), ("UNC", "North Carolina"), ("KU", "Kansas"),
              ("UK", "Kentucky"), ("GONZ", "Gonzaga"), ("HOU", "Houston"), ("PUR", "Purdue"),
              ("UCONN", "UConn"), ("ARIZ", "Arizona"), ("BAY", "Baylor"), ("TENN", "Tennessee"),
              ("AUB", "Auburn")),
    "EPL": (("ARS", "Arsenal"), ("LIV", "Liverpool"), ("MCI", "Man City"), ("CHE", "Chelsea"),
            ("TOT", "Tottenham"), ("MUN", "Man United"), ("NEW", "Newcastle"),
            ("AVL", "Aston Villa"), ("BHA", "Brighton"), ("WHU", "West Ham")),
}  # fmt: skip


def _series_json(s: _Series) -> dict[str, Any]:
    p = s.profile
    return {
        "additional_prohibitions": [],
        "categories": [p.category],
        "category": p.category,
        "contract_terms_url": f"https://kalshi.com/docs/terms/{s.ticker.lower()}.pdf",
        "contract_url": f"https://kalshi-public-docs.s3.amazonaws.com/contracts/{s.ticker}.pdf",
        "fee_multiplier": s.fee_multiplier,
        "fee_type": p.fee_type,
        "frequency": "hourly" if s.hourly else p.frequency,
        "settlement_sources": [{"name": s.source[0], "url": s.source[1]}],
        "tags": list(s.tags),
        "ticker": s.ticker,
        "title": s.title,
    }
