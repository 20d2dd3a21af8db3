"""Where the repository and its media are, for every test (tests/ mirrors src/, so a test file's own path says little)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_ASSETS = ROOT.parent / "shared" / "assets"
PORTRAIT = ROOT / "assets" / "portrait.png"
TEST_SIZE = 256  # output size where the size does not matter (fast)
