"""The dashboard's web app: FastAPI, server-rendered Jinja2 pages, a little JS, no CDN.

`create_app(workspace)` builds the app over one workspace; `trainyard ui`
serves it with uvicorn. Every script, style and font comes from `static/`
(uPlot is vendored there) and the Content-Security-Policy forbids anything
else, so the pages work with no network and fetch nothing from outside.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from trainyard.dashboard.auth import AuthMiddleware
from trainyard.dashboard.queries import utc
from trainyard.errors import NotFoundError, TrainyardError
from trainyard.workspace import Workspace

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2457c5"/>'
           '<path d="M3 11h10M3 8h10M5 5v8M11 5v8" stroke="#fff" stroke-width="1.5"/></svg>')


def fmt_num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 10 ** digits else f"{value:.{digits}f}"
    return str(value)


def fmt_dt(value) -> str:
    if not isinstance(value, datetime):
        return "-" if value is None else str(value)
    return utc(value).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def to_json(value) -> str:
    """JSON for a <script type="application/json"> block (safe against </script>)."""
    text = json.dumps(value, default=lambda o: utc(o).isoformat() if isinstance(o, datetime) else str(o))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(num=fmt_num, dt=fmt_dt, duration=fmt_duration, json_block=to_json)
    env.globals["compact"] = lambda v: json.dumps(v, default=str, separators=(", ", ": "))
    return templates


def create_app(workspace: Workspace | None = None, *, token: str | None = None, loopback_only: bool = True) -> FastAPI:
    from trainyard.dashboard import endpoints, pages

    ws = workspace or Workspace.resolve()
    app = FastAPI(title="trainyard dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = ws
    app.state.store = ws.store
    app.state.templates = make_templates()
    app.state.model_cache = {}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.exception_handler(TrainyardError)
    async def trainyard_error(request: Request, exc: TrainyardError):
        status = 404 if isinstance(exc, NotFoundError) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.problem, "fix": exc.fix}, status_code=status)
        return app.state.templates.TemplateResponse(request, "error.html", {"problem": exc.problem, "fix": exc.fix, "page": ""}, status_code=status)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True}

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(endpoints.router)
    app.add_middleware(AuthMiddleware, token=token, loopback_only=loopback_only and token is None)
    return app


def page(request: Request, template: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)
