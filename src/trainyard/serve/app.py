"""The HTTP app: FastAPI routes over hot-swappable model slots.

    POST /v1/models/{name}/predict      {"rows": [{...}, ...]} -> predictions (+ class probabilities)
    POST /v1/models/{name}/predict/csv  a CSV body (text/csv) or upload (multipart field "file")
    GET  /v1/models, /v1/models/{name}  version, schema, metrics, validation policy
    GET  /health, /ready, /metrics (Prometheus), /docs, /openapi.json (request schemas from each model)

Requests are validated against the training schema (see `serve.validate`), predicted on the event loop
for small batches (fast path) or in a worker thread for big ones, and logged to the workspace by a
background thread (see `serve.predlog`).
"""


import inspect
import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field

from trainyard.errors import ConfigError, suggest
from trainyard.lm.serving import add_language_models, is_language_model
from trainyard.rag.serving import add_indexes, is_rag_index
from trainyard.registry.lineage import code_version
from trainyard.registry.workspace import Workspace
from trainyard.rl.serving import add_policies, is_policy
from trainyard.serve.answering import lm_generator
from trainyard.serve.bodies import BadCsv, TooLarge, csv_bytes, csv_rows, outputs_csv, read_body
from trainyard.serve.image_serving import add_image_models, is_image_model
from trainyard.serve.metrics import Metrics
from trainyard.serve.predlog import PredictionLogger, row_ids
from trainyard.serve.runtime import ModelSlot, Poller, ServedModel
from trainyard.serve.security import OPEN_PATHS, read_token, token_matches
from trainyard.serve.validate import ValidationPolicy, describe_errors

SETTINGS_ENV = "TRAINYARD_SERVE_SETTINGS"
INLINE_ROWS = 64  # batches up to this size are predicted on the event loop; bigger ones in a thread
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass
class ServeSettings:
    refs: list[str]
    workspace: str | None = None
    token_file: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch: int = 10_000
    poll_interval: float = 2.0
    check_ranges: bool = True
    check_categories: bool = True
    allow_missing: bool = False
    log_predictions: bool = True
    compile_trees: bool = True  # LightGBM trees compiled to machine code in the background (serve.compiling)
    rag_generator: str | None = None  # a language model writing /v1/ask answers for served indexes (default: extractive)

    def policy(self) -> ValidationPolicy:
        return ValidationPolicy(ranges=self.check_ranges, categories=self.check_categories,
                                allow_missing=self.allow_missing, max_batch=self.max_batch)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls(**json.loads(os.environ[SETTINGS_ENV]))


def app_from_env():
    """uvicorn factory for `--workers N`: each worker process builds its own app from the settings."""
    return create_app(ServeSettings.from_env())


@dataclass
class _State:
    slots: dict[str, ModelSlot]
    logger: PredictionLogger | None
    poller: Poller
    metrics: object
    token: str | None
    settings: ServeSettings
    stopping: bool = False
    openapi_cache: dict = field(default_factory=dict)
    predict_paths: dict = field(default_factory=dict)  # "/v1/models/{name}/predict" -> slot, for the ASGI fast route


def create_app(settings: ServeSettings):
    from contextlib import asynccontextmanager

    from fastapi import FastAPI


    ws = Workspace.resolve(settings.workspace)
    policy = settings.policy()
    slots: dict[str, ModelSlot] = {}


    lm_refs = [ref for ref in settings.refs if is_language_model(ws, ref)]  # served by /v1/generate (trainyard.lm.serving)
    rag_refs = [ref for ref in settings.refs if ref not in lm_refs and is_rag_index(ws, ref)]  # /v1/search, /v1/ask (trainyard.rag.serving)
    rl_refs = [ref for ref in settings.refs if ref not in lm_refs and ref not in rag_refs and is_policy(ws, ref)]  # /v1/act (trainyard.rl.serving)
    image_refs = [ref for ref in settings.refs if ref not in lm_refs + rag_refs + rl_refs and is_image_model(ws, ref)]  # uploads (serve/image_serving)
    for ref in settings.refs:
        if ref in lm_refs or ref in rag_refs or ref in rl_refs or ref in image_refs:
            continue
        slot = ModelSlot(ws, ref, policy, settings.compile_trees)
        if slot.name in slots:
            raise ConfigError(f"Model '{slot.name}' is given twice ({slots[slot.name].ref} and {ref}).", "serve one reference per model name.")
        slot.refresh()  # load and verify now: a bad reference or a tampered artifact stops the start
        slots[slot.name] = slot
    logger = PredictionLogger(ws.store) if settings.log_predictions else None
    state = _State(slots, logger, Poller(list(slots.values()), settings.poll_interval), Metrics(),
                   read_token(settings.token_file) if settings.token_file else None, settings)
    state.predict_paths = {f"/v1/models/{name}/predict": slot for name, slot in slots.items()}

    @asynccontextmanager
    async def lifespan(app):
        freeze_heap()
        if logger:
            logger.start()
        state.poller.start()
        yield
        state.stopping = True
        state.poller.stop()
        for slot in slots.values():
            slot.stop()
        if logger:
            logger.stop()

    # FastAPI's OpenTelemetry hooks off: the server keeps its own /metrics, and asking OpenTelemetry whether it
    # is configured took ~40 us of every request (measured with cProfile on the ASGI app; the request is ~500 us).
    quiet = {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    app = FastAPI(title="trainyard model server", version=code_version()["trainyard"], lifespan=lifespan,
                  description="Predictions from trainyard models. Request bodies are checked against each model's training schema.",
                  **(quiet if "telemetry" in inspect.signature(FastAPI).parameters else {}))  # FastAPI >= 0.165
    app.state.trainyard = state
    add_image_models(app, ws, image_refs)  # before the table routes: their catch-all would answer these names 404
    _add_routes(app, state)
    add_language_models(app, ws, lm_refs)
    generator = lm_generator(settings.rag_generator, workspace=ws.home) if rag_refs and settings.rag_generator else None
    app.state.rag_indexes = add_indexes(app, ws, rag_refs, observe=state.metrics.observe, log=settings.log_predictions, generator=generator)
    add_policies(app, ws, rl_refs)
    app.openapi = lambda: _openapi(app, state)
    app.add_middleware(_Guard, state=state)
    return app


def freeze_heap() -> None:
    """Move everything loaded so far (the model, pandas, scikit-learn: ~200k objects) out of the garbage
    collector's view. Otherwise every full collection, triggered every few thousand requests, walks them
    all: ~0.1 s on an idle core and ~0.6 s on this loaded machine, a stall for every request in flight
    (it was the server's p99). The model's objects are freed by reference counting when it is swapped out."""
    import gc

    gc.collect()
    gc.freeze()


class _Guard:
    """Pure ASGI middleware: bearer token (when configured) and the Content-Length limit, before any routing."""

    def __init__(self, app, state: _State):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.state.token and scope["path"] not in OPEN_PATHS and not token_matches(headers.get(b"authorization"), self.state.token):
            return await _send_json(send, 401, {"detail": "missing or wrong bearer token: send `Authorization: Bearer <token>`"},
                                    [(b"www-authenticate", b"Bearer")])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.state.settings.max_body_bytes
            except ValueError:
                return await _send_json(send, 400, {"detail": "invalid Content-Length header"})
            if too_big:
                return await _send_json(send, 413, {"detail": f"request body over the limit of {self.state.settings.max_body_bytes} bytes; split it or use `trainyard predict` on a file"})
        slot = self.state.predict_paths.get(scope["path"]) if scope["method"] == "POST" else None
        if slot is not None:
            return await self._predict(slot, headers, receive, send)
        return await self.app(scope, receive, send)

    async def _predict(self, slot: ModelSlot, headers: dict, receive, send):
        """POST /v1/models/{name}/predict straight on ASGI: the same validation and prediction as the FastAPI
        route (which documents it), without routing, a Request object or a Response class per request."""
        import orjson

        started = time.perf_counter()
        served = slot.current
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        limit, size, chunks = self.state.settings.max_body_bytes, 0, []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _send_json(send, 413, {"detail": f"request body over the limit of {limit} bytes", "request_id": rid}, [(b"x-request-id", rid.encode())])
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        status, payload = await _predict_json(self.state, served, b"".join(chunks), rid, started)
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": body})


async def _send_json(send, status: int, obj, extra_headers=()):
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]})
    await send({"type": "http.response.body", "body": body})


def _problems_payload(served: ServedModel, problems: list[dict], rid: str) -> dict:
    message = problems[0]["problem"] + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")
    return {"detail": problems, "message": message, "model": served.name, "version": served.version, "request_id": rid}


async def _predict_json(state: "_State", served: ServedModel, body: bytes, rid: str, started: float) -> tuple[int, dict]:
    """Validate a {"rows": [...]} body and predict: (HTTP status, response object). Shared by both routes to it."""
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool

    try:
        rows = served.validator.validate_json(body)
    except ValidationError as exc:
        state.metrics.observe(served.name, served.version, "predict", 422, time.perf_counter() - started)
        return 422, _problems_payload(served, describe_errors(exc, served.model.schema), rid)
    outputs = served.outputs(rows) if len(rows) <= INLINE_ROWS else await run_in_threadpool(served.outputs, rows)
    return 200, _finish(state, served, rows, outputs, rid, "predict", started)


def _finish(state: "_State", served: ServedModel, rows: list[dict], outputs: list[dict], rid: str, endpoint: str, started: float) -> dict:
    ids = row_ids(rid, len(rows))
    if state.logger is not None:
        state.logger.submit(rid, served.name, served.version, rows, outputs)
    state.metrics.observe(served.name, served.version, endpoint, 200, time.perf_counter() - started, len(rows))
    return {"model": served.name, "version": served.version, "request_id": rid, "predictions": [{"id": i, **o} for i, o in zip(ids, outputs)]}


def _request_id(request) -> str:
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex


def _add_routes(app, state: _State) -> None:
    import orjson
    from fastapi import Request
    from fastapi.responses import PlainTextResponse, Response
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool

    def json_response(obj, status: int = 200, rid: str | None = None) -> Response:
        headers = {"X-Request-ID": rid} if rid else None
        return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type="application/json", headers=headers)

    def invalid(served: ServedModel, problems: list[dict], rid: str) -> Response:
        return json_response(_problems_payload(served, problems, rid), 422, rid)

    def too_large(served: ServedModel, rid: str) -> Response:
        return json_response({"detail": f"request body over the limit of {state.settings.max_body_bytes} bytes", "request_id": rid}, 413, rid)

    def bind(name: str, slot: ModelSlot) -> None:
        async def predict(request: Request):
            started = time.perf_counter()
            served = slot.current
            rid = _request_id(request)
            try:
                body = await read_body(request, state.settings.max_body_bytes)
            except TooLarge:
                return too_large(served, rid)
            status, payload = await _predict_json(state, served, body, rid, started)
            return json_response(payload, status, rid)

        async def predict_csv(request: Request, format: str = "json"):
            started = time.perf_counter()
            served = slot.current
            rid = _request_id(request)
            if format not in ("json", "csv"):
                return json_response({"detail": "format must be json or csv", "request_id": rid}, 422, rid)
            try:
                rows = csv_rows(await csv_bytes(request, state.settings.max_body_bytes), served)
            except TooLarge:
                return too_large(served, rid)
            except BadCsv as exc:
                return invalid(served, [{"row": None, "column": None, "type": "csv", "problem": str(exc)}], rid)
            if len(rows) > state.settings.max_batch:
                return invalid(served, [{"row": None, "column": None, "type": "too_long",
                                         "problem": f"too many rows: at most {state.settings.max_batch} per request (use `trainyard predict` on the file)"}], rid)
            try:
                rows = served.validator.validate_rows(rows)
            except ValidationError as exc:
                state.metrics.observe(served.name, served.version, "predict_csv", 422, time.perf_counter() - started)
                return invalid(served, describe_errors(exc, served.model.schema, rows_prefix=False), rid)
            outputs = served.outputs(rows) if len(rows) <= INLINE_ROWS else await run_in_threadpool(served.outputs, rows)
            payload = _finish(state, served, rows, outputs, rid, "predict_csv", started)
            if format == "csv":
                return Response(outputs_csv([p["id"] for p in payload["predictions"]], outputs, served), media_type="text/csv", headers={"X-Request-ID": rid})
            return json_response(payload, 200, rid)

        async def model_info():
            return json_response(_info(slot))

        app.add_api_route(f"/v1/models/{name}/predict", predict, methods=["POST"], tags=[name], name=f"predict_{name}",
                          summary=f"Predict with {name} (JSON rows)", responses=_PREDICT_RESPONSES)
        app.add_api_route(f"/v1/models/{name}/predict/csv", predict_csv, methods=["POST"], tags=[name], name=f"predict_csv_{name}",
                          summary=f"Predict with {name} (CSV body or upload)", responses=_PREDICT_RESPONSES,
                          openapi_extra={"requestBody": {"required": True, "content": {
                              "text/csv": {"schema": {"type": "string"}},
                              # a CSV file (OpenAPI 3.1: contentMediaType, not format binary: an image here is not a valid request)
                              "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "contentMediaType": "text/csv", "minLength": 1}},
                                                                 "required": ["file"]}, "encoding": {"file": {"contentType": "text/csv"}}}}}})
        app.add_api_route(f"/v1/models/{name}", model_info, methods=["GET"], tags=[name], name=f"model_{name}", summary=f"{name}: version, schema, metrics")

    for name, slot in state.slots.items():
        bind(name, slot)

    names = sorted(state.slots)

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    @app.post("/v1/models/{name}/predict/csv", include_in_schema=False)
    @app.get("/v1/models/{name}", include_in_schema=False)
    async def unknown_model(name: str):
        return json_response({"detail": f"no model '{name}' is served here; {suggest(name, names)}"}, 404)

    @app.get("/v1/models", summary="Served models: version, schema, metrics, validation policy")
    async def list_models():
        return json_response({"models": [_info(s) for s in state.slots.values()]})

    @app.get("/health", summary="The process is up")
    async def health():
        return json_response({"status": "ok"})

    @app.get("/ready", summary="Every model is loaded and the server is not shutting down")
    async def ready():
        loaded = {s.ref: (s.current.version if s.current else None) for s in state.slots.values()}
        problems = {s.ref: s.last_error for s in state.slots.values() if s.last_error}
        ok = not state.stopping and all(v is not None for v in loaded.values())
        return json_response({"status": "ready" if ok else "not ready", "models": loaded, "problems": problems}, 200 if ok else 503)

    @app.get("/metrics", summary="Prometheus metrics (this process), in the Prometheus text format 0.0.4", response_class=PlainTextResponse)
    async def metrics():
        return Response(state.metrics.render(list(state.slots.values()), state.logger), media_type="text/plain; version=0.0.4")


_PREDICT_RESPONSES = {
    200: {"description": "One prediction per row, with class probabilities for classifiers; the request id is also in X-Request-ID."},
    401: {"description": "Missing or wrong bearer token."},
    413: {"description": "The body is over the size limit."},
    422: {"description": "The rows do not fit the training schema: `detail` names each row, column and problem."},
}


def _info(slot: ModelSlot) -> dict:
    info = slot.current.info()
    info.update(ref=slot.ref, follows_alias=not slot.pinned, swaps=slot.swaps, refresh_problem=slot.last_error)
    return info


def _openapi(app, state: _State) -> dict:
    """The OpenAPI document, with each model's request schema built from its current version."""
    from fastapi.openapi.utils import get_openapi

    key = tuple((n, s.current.version) for n, s in sorted(state.slots.items()))
    if key in state.openapi_cache:
        return state.openapi_cache[key]
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, slot in state.slots.items():
        schema = slot.current.validator.json_schema("")
        components.update(schema.pop("$defs", {}))
        title = schema.get("title", f"{name}Request")
        components[title] = schema
        op = doc["paths"][f"/v1/models/{name}/predict"]["post"]
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{title}"}}}}
    state.openapi_cache.clear()
    state.openapi_cache[key] = doc
    return doc
