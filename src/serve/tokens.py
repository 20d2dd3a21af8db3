"""Who may do what: the server's admin token (creating sessions off loopback) and each session's tokens.

A session has two: its control token (every route of the session, the studio) and a
viewer token (the viewer page only), so a shared viewer link gives no control. A request
carries a token as `Authorization: Bearer ...` or `?token=...`. Missing -> 401, wrong -> 403.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from src.core.errors import ConfigError
from src.output.webrtc.auth import is_loopback, request_token

Role = Literal["control", "viewer"]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(given: str | None, expected: str | None) -> bool:
    return given is not None and expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def resolve_admin_token(host: str, configured: str | None) -> tuple[str | None, bool]:
    """The admin token (None: anyone may create sessions) and whether it was generated here."""
    if configured is not None:
        if not configured.strip():
            raise ConfigError("serve.admin_token: empty; set a non-empty token or remove the key")
        return configured, False
    if is_loopback(host):
        return None, False
    return new_token(), True


@dataclass
class SessionTokens:
    control: str = field(default_factory=new_token)
    viewer: str = field(default_factory=new_token)

    def role_of(self, given: str | None) -> Role | None:
        if same(given, self.control):
            return "control"
        if same(given, self.viewer):
            return "viewer"
        return None


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_admin(request: web.Request, admin_token: str | None) -> None:
    if admin_token is None:
        return
    given = request_token(request)
    if not given:
        raise AuthError(401, "this server needs its admin token to create or list sessions; send "
                             "'Authorization: Bearer TOKEN' (printed when the server started)")
    if not same(given, admin_token):
        raise AuthError(403, "wrong admin token; use the one printed when the server started")


def check_session(request: web.Request, tokens: SessionTokens, need: Role = "control") -> Role:
    given = request_token(request)
    if not given:
        raise AuthError(401, "missing session token; send 'Authorization: Bearer TOKEN' or ?token=TOKEN "
                             "(the token from POST /api/sessions)")
    role = tokens.role_of(given)
    if role is None:
        raise AuthError(403, "wrong token for this session; use the token from POST /api/sessions")
    if need == "control" and role != "control":
        raise AuthError(403, "a viewer token only opens the viewer page; this needs the session's control token")
    return role
