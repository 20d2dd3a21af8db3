"""Builds assets/voice/vowel_templates.json from espeak-ng vowels.

The code is in src/bench/vowel_templates.py (run `make setup` first: it makes `src` importable)."""

import sys

from src.bench.vowel_templates import main

if __name__ == "__main__":
    sys.exit(main())
