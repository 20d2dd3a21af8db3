"""Debian's Chromium, headless, through Playwright: one launch for every browser test that drives a page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from src.bench.outputs import CHROMIUM, CHROMIUM_ARGS


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium with the project's flags plus `extra_args` (e.g. a fake camera and microphone)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
