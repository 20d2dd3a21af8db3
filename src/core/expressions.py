"""Expressions on demand: their names, the window keys that show them, and the check of a request."""

from __future__ import annotations

from src.core.errors import UserError

EXPRESSIONS = ("smile", "surprise", "anger", "sadness")
# Window keys: 1..4 the expressions at 0.8, 0 back to none.
KEYS = {ord("1"): "smile", ord("2"): "surprise", ord("3"): "anger", ord("4"): "sadness"}


class UnknownExpressionError(UserError, ValueError):
    pass


def check_expression(name: str, intensity: float) -> str:
    key = name.strip().lower()
    if key not in EXPRESSIONS and key not in ("none", "neutral"):
        raise UnknownExpressionError(f"expression {name!r}: unknown; use one of {', '.join(EXPRESSIONS)} (or none)")
    if not 0.0 <= float(intensity) <= 1.0:
        raise UnknownExpressionError(f"expression intensity {intensity}: out of range; use 0 to 1")
    return key


__all__ = ["EXPRESSIONS", "KEYS", "UnknownExpressionError", "check_expression"]
