"""Language models behind HTTP: `POST /v1/generate`, streamed with server-sent events.

    POST /v1/generate {"prompt": "Once upon a time", "max_tokens": 100, "temperature": 0.8, "stream": true}

Without "stream" the answer is one JSON object (text, tokens, finish reason,
timing). With it the response is `text/event-stream`: one `data: {"text": ...}`
event per piece as soon as it is final, then a last event with the finish
reason and counts, then `data: [DONE]`. The serving app (`trainyard.serve.app`)
hands the references that name language models to `add_language_models`.
"""


import json
import threading
import time

from trainyard.errors import ConfigError
from trainyard.lm.artifact import KIND, load_base
from trainyard.lm.generate import Sampling, stream
from trainyard.registry.artifact import read_meta


def is_language_model(ws, ref: str) -> bool:
    row = ws.store.resolve_model(ref)
    return read_meta(ws.home / row["artifact_path"]).get("kind") == KIND


def add_language_models(app, ws, refs: list[str]) -> dict:
    """Load each language model (hashes verified) and add the generation routes; returns {name: LanguageModel}."""
    from trainyard.registry.store import parse_ref

    models = {}
    for ref in refs:
        name = parse_ref(ref)[0]
        if name in models:
            raise ConfigError(f"Language model '{name}' is given twice.", "serve one reference per model name.")
        models[name] = load_base(ref, ws.home)
    if models:
        add_generate_routes(app, models)
    return models


async def json_body(request, model):
    """The body as `model`, read as JSON whatever the content type says: `curl -d '{...}'` sends JSON labelled as a
    form (application/x-www-form-urlencoded). A body that is not JSON, or not a valid request, is answered 422."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    raw = await request.body()
    try:
        value = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": f"the body is not JSON: {exc}",
                                       "input": raw[:200].decode("utf-8", "replace")}]) from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def add_generate_routes(app, models: dict) -> None:
    from fastapi import HTTPException, Request
    from starlette.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, StreamingResponse
    from pydantic import BaseModel, Field

    from trainyard.lm.sft import chat_prompt

    locks = {name: threading.Lock() for name in models}

    class GenerateRequest(BaseModel):
        prompt: str
        model: str | None = Field(None, description="Which language model (needed only when several are served).")
        max_tokens: int = Field(100, ge=0, le=4096)
        temperature: float = Field(1.0, ge=0)
        top_k: int = Field(0, ge=0)
        top_p: float = Field(1.0, gt=0, le=1)
        stop: list[str] = Field(default_factory=list)
        repetition_penalty: float = Field(1.0, gt=0, description="Above 1 discourages tokens already in the text (1 = off).")
        no_repeat_ngram: int = Field(0, ge=0, description="Never repeat an n-gram of tokens (0 = off).")
        seed: int | None = None
        chat: bool = Field(False, description="Wrap the prompt in the model's chat template.")
        stream: bool = False

    def pick(name: str | None):
        if name is None and len(models) == 1:
            name = next(iter(models))
        if name not in models:
            raise HTTPException(404, f"no language model '{name}' is served here; served: {sorted(models)}")
        return name, models[name]

    def run(name, lm, req: GenerateRequest, info: dict):
        s = Sampling(max_tokens=req.max_tokens, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
                     stop=tuple(req.stop), seed=req.seed, repetition_penalty=req.repetition_penalty, no_repeat_ngram=req.no_repeat_ngram)
        prompt = chat_prompt(lm.tokenizer, req.prompt) if req.chat else req.prompt
        with locks[name]:  # one generation per model at a time: it uses every core already
            yield from stream(lm.model, lm.tokenizer, prompt, s, info)

    def summary(name, lm, info, started):
        seconds = time.perf_counter() - started
        return {"model": name, "version": lm.meta.get("version"), "tokens": info.get("tokens", 0), "finish": info.get("finish"),
                "seconds": round(seconds, 4), "tokens_per_second": round(info.get("tokens", 0) / max(seconds, 1e-9), 2)}

    @app.post("/v1/generate", summary="Generate text from a language model (optionally streamed as server-sent events)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": GenerateRequest.model_json_schema()}}}})
    async def generate(request: Request):
        req = await json_body(request, GenerateRequest)
        return await run_in_threadpool(answer, req)

    def answer(req: GenerateRequest):
        name, lm = pick(req.model)
        started, info = time.perf_counter(), {}
        if not req.stream:
            text = "".join(run(name, lm, req, info))
            return JSONResponse({"text": text, **summary(name, lm, info, started)})

        def events():
            for piece in run(name, lm, req, info):
                yield f"data: {json.dumps({'text': piece})}\n\n"
            yield f"event: done\ndata: {json.dumps(summary(name, lm, info, started))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/language-models", summary="Served language models")
    def language_models():
        return {"models": [{"name": n, "version": lm.meta.get("version"), "task": lm.meta.get("task"),
                            "metrics": lm.meta.get("metrics"), "adapter": lm.is_adapter} for n, lm in models.items()]}
