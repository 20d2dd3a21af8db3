"""Who may watch: loopback binds are open; any other address needs a token."""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from aiohttp import web

from src.core.errors import OutputError

TOKEN_QUERY = "token"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, configured: str | None) -> tuple[str | None, bool]:
    """The token viewers must present (None = no token needed) and whether it was generated here.

    A configured token is always enforced; binding beyond loopback without one generates one.
    """
    if configured is not None:
        if not configured.strip():
            raise OutputError("output.webrtc.token: empty; set a non-empty token or remove the key")
        return configured, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(18), True


def request_token(request: web.Request) -> str | None:
    """The token a request carries: `Authorization: Bearer X` or `?token=X`."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get(TOKEN_QUERY)


def authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    given = request_token(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def parse_host_port(arg: str | None, host: str, port: int) -> tuple[str, int]:
    """`--output webrtc[:HOST:PORT]`: 'HOST:PORT', 'PORT', 'HOST' or '[::1]:PORT' over the config's defaults."""
    if not arg:
        return host, port
    text = arg.strip()
    if text.startswith("["):  # [v6]:port
        end = text.find("]")
        if end < 0:
            raise OutputError(f"--output webrtc:{arg}: unclosed '[' in the address; use webrtc:[::1]:8080")
        host_part, rest = text[1:end], text[end + 1 :]
        port_part = rest[1:] if rest.startswith(":") else ""
    elif text.isdigit():
        host_part, port_part = "", text
    elif text.count(":") == 1:
        host_part, _, port_part = text.partition(":")
    else:
        host_part, port_part = text, ""
    if port_part:
        if not port_part.isdigit() or not 0 <= int(port_part) <= 65535:
            raise OutputError(f"--output webrtc:{arg}: port {port_part!r} is not 0..65535; use e.g. webrtc:127.0.0.1:8080")
        port = int(port_part)
    return (host_part or host), port
