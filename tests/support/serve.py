"""Helpers for the `serve` tests: the app on a free port in a thread (src/serve/runner.py) and the API client
(scripts/serve_client.py)."""

from __future__ import annotations

from scripts.serve_client import audio_level, create, first_loud, http, multipart, view, wait_for
from src.serve.runner import BackgroundServer as ServeServer

__all__ = ["ServeServer", "audio_level", "create", "first_loud", "http", "multipart", "view", "wait_for"]
