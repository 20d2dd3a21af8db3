"""Log the first error of each kind, count every one: a failing frame or device never floods the log."""

from __future__ import annotations

import logging


def error_kind(exc: BaseException) -> str:
    """`Type: message`, cut to 200 characters: what makes two errors 'the same'."""
    return f"{type(exc).__name__}: {exc}"[:200]


class ErrorTally:
    """`report(exc)` counts the error and logs it at warning level the first time its kind is seen."""

    def __init__(self, logger: logging.Logger, template: str) -> None:
        self._log = logger
        self._template = template  # e.g. "stage capture: %s (further identical errors are only counted)"
        self._kinds: set[str] = set()
        self.count = 0
        self.first: str | None = None

    def report(self, exc: BaseException) -> str:
        kind = error_kind(exc)
        self.count += 1
        if self.first is None:
            self.first = kind
        if kind not in self._kinds:
            self._kinds.add(kind)
            self._log.warning(self._template, kind)
        return kind
