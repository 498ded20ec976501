"""evoarena: evolve paper-trading bots on Kalshi prediction markets."""

__version__ = "0.1.0"
