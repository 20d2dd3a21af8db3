"""Exceptions shared by every package.

`UserError` is the one a user can cause (a missing file, a bad config value, a
camera that does not exist). The command line prints its message as one line
and exits with status 2; it never shows a traceback. Subclasses also inherit
the matching builtin (as PyAV does) so callers may catch either.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; the message names the input and the fix."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config key that does not exist or a value outside what is allowed."""


class SourceImageError(UserError, ValueError):
    """The source portrait is missing, unreadable or has no usable face."""


class CaptureError(UserError, OSError):
    """A driver (webcam, video file, image) that cannot be opened."""


class OutputError(UserError, OSError):
    """An output that cannot be opened (unwritable path, port in use, no device)."""


class ModelError(UserError, ValueError):
    """A model file or directory that is missing or does not match what is expected."""
