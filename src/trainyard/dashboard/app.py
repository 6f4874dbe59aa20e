"""The dashboard's web app: FastAPI, server-rendered Jinja2 pages, a little JS, no CDN.

`create_app(workspace)` builds the app over one workspace; `trainyard ui`
serves it with uvicorn. Every script, style and font comes from `static/`
(uPlot is vendored there) and the Content-Security-Policy forbids anything
else, so the pages work with no network and fetch nothing from outside.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from trainyard.dashboard import endpoints, labelling, pages
from trainyard.dashboard.auth import AuthMiddleware
from trainyard.dashboard.templating import HERE, make_templates
from trainyard.errors import NotFoundError, TrainyardError
from trainyard.label.annotators import annotator_of
from trainyard.label.learner import Retrainer
from trainyard.registry.workspace import Workspace

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2457c5"/>'
           '<path d="M3 11h10M3 8h10M5 5v8M11 5v8" stroke="#fff" stroke-width="1.5"/></svg>')


def create_app(workspace: Workspace | None = None, *, token: str | None = None, loopback_only: bool = True) -> FastAPI:
    ws = workspace or Workspace.resolve()
    app = FastAPI(title="trainyard dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = ws
    app.state.store = ws.store
    app.state.templates = make_templates()
    app.state.model_cache = {}
    app.state.retrainer = Retrainer(ws)

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
    app.include_router(labelling.router)
    app.add_middleware(AuthMiddleware, token=token, loopback_only=loopback_only and token is None,
                       guest=lambda path, key: path.startswith(labelling.GUEST_PATHS) and annotator_of(ws.store, key) is not None)
    return app
