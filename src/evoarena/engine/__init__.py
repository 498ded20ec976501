"""The functional core's market side: the shared book, the paper exchange and fees."""
