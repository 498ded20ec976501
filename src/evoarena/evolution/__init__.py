"""The functional core's population side: genomes, bots, operators, fitness and persistence."""
