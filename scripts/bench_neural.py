"""Neural-animator figures (U-Net timings, batch auto-tune, training figure).

The code is in src/bench/neural.py (run `make setup` first: it makes `src` importable)."""

import sys

from src.bench.neural import cli as main

if __name__ == "__main__":
    sys.exit(main())
