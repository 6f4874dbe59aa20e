"""`trainyard serve` and `trainyard export`: a model behind HTTP, or out of trainyard's format."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, err_console
from trainyard.errors import ConfigError
from trainyard.registry.workspace import Workspace
from trainyard.serve.security import check_bind, read_token


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("export")(export)


def serve(
    refs: list[str] = typer.Argument(..., help="Models to serve: NAME (follows the latest version), NAME@ALIAS (follows the alias) or NAME@VERSION."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback needs --token-file."),
    port: int = typer.Option(8000, "--port", "-p", help="Port."),
    token_file: Path = typer.Option(None, "--token-file", help="File holding the bearer token clients must send."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads the model and polls its alias)."),
    max_body_mb: float = typer.Option(10.0, "--max-body-mb", help="Largest request body accepted (413 above)."),
    max_batch: int = typer.Option(10_000, "--max-batch", help="Most rows per request (422 above)."),
    poll_interval: float = typer.Option(2.0, "--poll-interval", help="Seconds between checks for a moved alias (0: never)."),
    no_range_check: bool = typer.Option(False, "--no-range-check", help="Accept numbers outside the range seen in training."),
    allow_unseen_categories: bool = typer.Option(False, "--allow-unseen-categories", help="Accept categories not seen in training (treated as missing)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Treat every column as optional (absent = missing, imputed)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not write requests to the prediction log."),
    access_log: bool = typer.Option(False, "--access-log", help="Print one line per request (slower)."),
    no_compile: bool = typer.Option(False, "--no-compile", help="Keep LightGBM's own tree code (by default each LightGBM model is compiled to machine code in the background, checked against LightGBM, and used once ready: ~3x faster single rows)."),
    generator: str = typer.Option(None, "--generator", help="Document indexes: a language model (ref or HF directory) writing /v1/ask answers (default: extractive)."),
) -> None:
    """Serve models over HTTP: JSON and CSV prediction, validation from the training schema, hot-swapped aliases."""
    import os

    import uvicorn

    from trainyard.serve.app import SETTINGS_ENV, ServeSettings, create_app

    token = read_token(token_file) if token_file else None
    check_bind(host, token)
    if workers < 1:
        raise ConfigError("--workers must be at least 1.", "pass --workers 1 (one per CPU core is a good ceiling).")
    check_limits(port, max_body_mb, max_batch, poll_interval)
    ws = Workspace.resolve()
    settings = ServeSettings(
        refs=list(refs), workspace=str(ws.home), token_file=str(token_file.resolve()) if token_file else None,
        max_body_bytes=int(max_body_mb * 1024 * 1024), max_batch=max_batch, poll_interval=poll_interval,
        check_ranges=not no_range_check, check_categories=not allow_unseen_categories, allow_missing=allow_missing,
        log_predictions=not no_log, compile_trees=not no_compile, rag_generator=generator,
    )
    app = create_app(settings)  # loads and verifies every model here, so a bad reference fails before binding
    for slot in app.state.trainyard.slots.values():
        cur = slot.current
        compiling = cur.compilation.info() if cur.compilation is not None else {"state": "off"}
        note = f", compiling {compiling['lightgbm_members']} LightGBM models in the background" if compiling["state"] == "compiling" else ""
        err_console.print(f"serving {slot.ref} -> {cur.name}@{cur.version} ({cur.meta.get('family')}, fast path {'on' if cur.fast else 'off'}{note})")
    for r in app.state.rag_indexes.values():
        err_console.print(f"serving index {r.ref} ({len(r.index)} passages, {r.index.meta['encoder']['label']}): POST /v1/search, /v1/ask")
    scheme_host = f"[{host}]" if ":" in host else host
    err_console.print(f"listening on http://{scheme_host}:{port}  (docs: /docs, health: /health, metrics: /metrics)"
                      + ("  [bearer token required]" if token else ""))
    opts = dict(host=host, port=port, log_level="warning", access_log=access_log, timeout_graceful_shutdown=10, server_header=False)
    for mod, key, value in (("uvloop", "loop", "uvloop"), ("httptools", "http", "httptools")):
        try:
            __import__(mod)
            opts[key] = value
        except ImportError:
            pass
    if workers == 1:
        uvicorn.run(app, **opts)
        return
    for slot in app.state.trainyard.slots.values():
        slot.stop()  # each worker loads (and compiles) its own copy
    del app
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run("trainyard.serve.app:app_from_env", factory=True, workers=workers, **opts)
    console.print("server stopped")


def check_limits(port: int, max_body_mb: float, max_batch: int, poll_interval: float) -> None:
    """Numbers a server cannot honour, refused before anything binds (the OS would wrap a port above 65535)."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (1 to 65535).", "pass a free port, e.g. --port 8000.")
    if not max_body_mb > 0:
        raise ConfigError(f"--max-body-mb {max_body_mb:g} would refuse every request.", "pass a positive size, e.g. --max-body-mb 10.")
    if max_batch < 1:
        raise ConfigError(f"--max-batch {max_batch} would refuse every request.", "pass a positive row count, e.g. --max-batch 10000.")
    if poll_interval < 0:
        raise ConfigError(f"--poll-interval {poll_interval:g} is negative.", "pass seconds between alias checks, or 0 to never check.")


def export(
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    fmt: str = typer.Option(..., "--format", "-f", help="onnx (LightGBM on numeric/boolean/categorical columns, image CNNs, language models; verified with onnxruntime) or mlflow (table and text models: a pyfunc directory)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (must be new or empty unless --force)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
) -> None:
    """Export a model version as ONNX or as an MLflow pyfunc model directory."""
    from trainyard.serve.export import export as run_export

    with console.status(f"exporting {ref} as {fmt}"):
        info = run_export(ref, fmt, output, force=force)
    if fmt == "onnx":
        check = info["verification"]
        console.print(f"Wrote {output / 'model.onnx'} (inputs: {info.get('input_summary', 'one per column')}; outputs: {', '.join(info['outputs'])}).")
        console.print(f"Verified with onnxruntime on {check['rows']} rows: max difference {check['max_abs_diff']:.2g} "
                      f"({check['share_within_tolerance']:.0%} within {check['tolerance']}).")
    else:
        console.print(f"Wrote an MLflow pyfunc model to {output}: load it with mlflow.pyfunc.load_model('{output}') "
                      f"or serve it with `mlflow models serve -m {output} --env-manager local`.")
        console.print(f"Its meta.json SHA-256 is {info['meta_sha256']}: keep it apart from the folder and set "
                      f"TRAINYARD_MODEL_SHA256={info['meta_sha256']} where it is loaded, so the loader refuses an altered "
                      "artifact (see docs/serving.md on folders from others).", highlight=False, soft_wrap=True)
