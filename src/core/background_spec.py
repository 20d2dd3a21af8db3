"""`animation.background` specs: keep | blur | image:PATH | color:#RRGGBB | transparent, checked for form."""

from __future__ import annotations

import re

from src.core.errors import ConfigError

MODES = "keep | blur | image:PATH | color:#RRGGBB | transparent"


def parse_color(text: str) -> tuple[int, int, int]:
    """'#RRGGBB' (or 'RRGGBB', '#RGB') -> BGR; a ConfigError naming the input otherwise."""
    s = text.strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{3}", s):
        s = "".join(c * 2 for c in s)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", s):
        raise ConfigError(f"animation.background color:{text}: not a colour; use color:#RRGGBB, e.g. color:#1E90FF")
    r, g, b = (int(s[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def validate_spec(spec: str) -> str:
    """The spec, checked for form (the image is read when the avatar is prepared)."""
    s = spec.strip()
    low = s.lower()
    if low in ("keep", "blur", "transparent"):
        return low
    if low.startswith("color:"):
        parse_color(s[6:])
        return s
    if low.startswith("image:"):
        if not s[6:].strip():
            raise ConfigError("animation.background image: needs a path; use image:PATH, e.g. image:assets/office.jpg")
        return s
    raise ConfigError(f"animation.background {spec!r}: unknown mode; use {MODES}")


__all__ = ["MODES", "parse_color", "validate_spec"]
