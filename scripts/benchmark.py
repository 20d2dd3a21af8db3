"""Every README figure: fps, latency, drops, CPU, lip sync, outputs, neural models.

The code is in src/bench/benchmark.py (run `make setup` first: it makes `src` importable)."""

import sys

from src.bench.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
