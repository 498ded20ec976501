"""Market-data sources: Kalshi live, recorded replays, and the synthetic day generator.

Only this package knows Kalshi's field names; it emits the domain events in :mod:`.events`.
"""
