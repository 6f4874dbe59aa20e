"""`trainyard ui`: the web dashboard over the workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console
from trainyard.dashboard.auth import is_loopback, new_token, read_token
from trainyard.errors import ConfigError
from trainyard.registry.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)


def ui(
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback requires a token."),
    token_file: Path = typer.Option(None, "--token-file", help="File holding the access token (required off loopback; "
                                    "one is generated and printed if missing)."),
) -> None:
    """Open the web dashboard: runs with live curves, models (promote / roll back), data audits, monitoring, predictions."""
    serve_dashboard(port, host, token_file)


def serve_dashboard(port: int, host: str, token_file: Path | None, path: str = "/") -> None:
    """Serve the dashboard until Ctrl-C and print the address of `path` (the labelling page for `trainyard label NAME`)."""
    try:
        import uvicorn

        from trainyard.dashboard.app import create_app
    except ImportError as exc:
        raise ConfigError(f"The dashboard needs {exc.name}, which is not installed.", "pip install 'trainyard[dashboard]'.") from None
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a port number.", "use a number between 1 and 65535, e.g. 8080.")
    ws = Workspace.resolve()
    fresh = not ws.home.exists()
    token = read_token(token_file) if token_file else None
    loopback = is_loopback(host)
    if token is None and not loopback:
        token = new_token()
        console.print(f"[yellow]Bound to {host}: a token is required.[/] Generated one for this session "
                      "(use --token-file to choose your own).")
    app = create_app(ws, token=token, loopback_only=loopback)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}{path}"
    console.print(f"trainyard dashboard for workspace [bold]{ws.home}[/]" + (" (new, empty)" if fresh else ""))
    console.print(f"open [bold]{url}{'?token=' + token if token else ''}[/]  (Ctrl-C to stop)", soft_wrap=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2, access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as exc:
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}.", "choose another --port, or stop what is using it.") from None
    if not server.started:
        raise ConfigError(f"Cannot listen on {host}:{port} (is the port in use?).", "choose another --port, or stop what is using it.")
