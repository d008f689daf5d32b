"""layerpuzzle: layer removal and merging for decoder-only LLMs.

Reproduces "Layer as Puzzle Pieces" (CoMe) and the methods it is compared with.
The Snakemake workflow around this package only wires its functions together.
"""

__version__ = "0.1.0"
