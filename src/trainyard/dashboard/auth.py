"""Who may talk to the dashboard.

- Bound to loopback with no token: anyone on this machine, but only through a
  loopback Host header (a web page on another site cannot reach it by DNS
  rebinding) and only same-origin JSON writes (a form on another site cannot
  promote a model).
- With a token (required when bound to anything but loopback): every request
  carries it as `Authorization: Bearer TOKEN` or in the `trainyard_token`
  cookie, which `?token=TOKEN` on any page sets (then the address is cleaned).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from trainyard.errors import ConfigError

COOKIE = "trainyard_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"Cannot read the token file '{path}': {exc.strerror}.", "create it with one line, the token, e.g. `openssl rand -hex 24 > t.txt`.") from None
    if len(token) < 16:
        raise ConfigError(f"The token in '{path}' is {'empty' if not token else 'too short'}.", "put a random token of at least 16 characters in it, e.g. `openssl rand -hex 24 > t.txt`.")
    return token


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_only(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]")[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class AuthMiddleware:
    """Pure ASGI middleware (works for streaming responses too)."""

    def __init__(self, app, token: str | None, loopback_only: bool, guest=None):
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.guest = guest  # guest(path, token) -> bool: a narrower token (an annotator's) that opens some paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.loopback_only and not is_loopback(_host_only(host)):
            return await _plain(send, 403, "Forbidden: this dashboard only answers requests addressed to localhost.")
        method = scope["method"]
        if method not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin and urlsplit(origin).netloc != host:
                return await _plain(send, 403, "Forbidden: cross-site request.")
            if not headers.get("content-type", "").startswith("application/json"):
                return await _plain(send, 415, "Send JSON (Content-Type: application/json).")
        if self.token is None:
            return await self.app(scope, receive, send)
        query = _query(scope)
        offered = query.get("token")
        if offered is not None and hmac.compare_digest(offered.encode(), self.token.encode()) and method == "GET":
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return await _respond(send, 303, b"", [(b"location", location.encode()), (b"set-cookie", cookie.encode())])
        if self._authorized(headers) or self._guest(scope["path"], headers, query):
            return await self.app(scope, receive, send)
        return await _plain(send, 401, "Unauthorized: open the address `trainyard ui` printed (it carries ?token=...), "
                                       "or send Authorization: Bearer TOKEN.", [(b"www-authenticate", b"Bearer")])

    def _guest(self, path: str, headers: dict[str, str], query: dict[str, str]) -> bool:
        token = _guest_token(headers, query)
        return bool(self.guest and token and self.guest(path, token))

    def _authorized(self, headers: dict[str, str]) -> bool:
        expected = self.token.encode()
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), expected):
            return True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), expected):
                return True
        return False


GUEST_COOKIE = "trainyard_annotator"


def _guest_token(headers: dict[str, str], query: dict[str, str]) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == GUEST_COOKIE:
            return value
    return headers.get("x-annotator-token") or query.get("annotator")


def _query(scope) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


async def _plain(send, status: int, text: str, extra: list | None = None) -> None:
    await _respond(send, status, text.encode(), [(b"content-type", b"text/plain; charset=utf-8"), *(extra or [])])


async def _respond(send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
