"""Who may call the server: the loopback rule and bearer tokens.

Binding to anything but a loopback address (127.0.0.0/8, ::1, localhost) exposes the model to the
network, so `trainyard serve` refuses to do that without `--token-file`; with a token every endpoint
except /health and /ready needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from trainyard.errors import ConfigError, NotFoundError

MIN_TOKEN_LENGTH = 16
OPEN_PATHS = frozenset({"/health", "/ready"})


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname could resolve anywhere: treat it as exposed


def read_token(path: str | os.PathLike) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"Token file not found: {p}", "create it, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt`.")
    token = p.read_text().strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(f"The token in {p} is too short or has spaces (needs at least {MIN_TOKEN_LENGTH} characters, one line).",
                          "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt`.")
    return token


def check_bind(host: str, token: str | None) -> None:
    """The rule: no token, loopback only."""
    if token is None and not is_loopback(host):
        raise ConfigError(f"Refusing to serve on {host} without a token: anyone who can reach this address could call the model.",
                          "pass --token-file FILE (clients send `Authorization: Bearer <token>`), or bind to 127.0.0.1.")


def token_matches(header_value: bytes | None, token: str) -> bool:
    if not header_value:
        return False
    scheme, _, value = header_value.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
