"""Audio-side figures (render speed, mic latency, lag drift).

The code is in src/bench/audio.py (run `make setup` first: it makes `src` importable)."""

import sys

from src.bench.audio import main

if __name__ == "__main__":
    sys.exit(main())
