"""The reference HTTP service over an ONNX export bundle (Starlette on uvicorn; the ``serve`` extra).

  POST /predict   {"dialogues": [<dialogue>, ...], "return_text": false} -> {"turns": [<rows>]}
  GET  /healthz   {"status": "ok"}
  GET  /metadata  model name, taxonomy version + hash, graph variant, context settings

Rows are profiler-predict's, without ``text`` unless ``return_text`` is true: a client already
has its text, and echoing a long turn back doubles the traffic.

Bad input is always a 4xx naming the field: 400 malformed JSON, body shape or headers, 408 a body
that does not arrive within ``read_timeout_s``, 413 over a size limit, 422 contract violations
(every problem listed, as ``dialogues[i].turns[j].speaker``). A request is all-or-nothing, so a
client never has to match partial answers to its dialogues. Overload is 503 with Retry-After, never
a reset connection: at most ``max_pending`` requests are admitted, ``workers`` of them score at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from profiler.data.contract import validate_line
from profiler.encoders.sources import load_tokenizer
from profiler.export.runtime import read_bundle_meta
from profiler.predict.output import ScoresSpec, predict_rows
from profiler.predictor import InferenceSettings, Predictor

log = logging.getLogger(__name__)
access_log = logging.getLogger("profiler.serve.access")


@dataclass(frozen=True)
class ServiceLimits:
    max_body_bytes: int = 1 << 20
    max_dialogues: int = 64
    max_turns: int = 2000
    workers: int = 2              # requests scored at once (each has its own tokenizer; the ONNX session is shared)
    max_pending: int = 64         # admitted requests (scoring + waiting); more get 503 + Retry-After
    read_timeout_s: float = 30.0  # a request body must arrive within this (slow clients cost no thread)
    retry_after_s: int = 1


class BadRequest(Exception):
    def __init__(self, status: int, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


class TaggingService:
    """Validation + the shared prediction path over a pool of scoring lanes.

    A lane is a Predictor with its own tokenizer: ``TurnInputBuilder`` flips the tokenizer's
    truncation side per batch, so two threads must never share one. The ONNX Runtime session is
    thread-safe and shared, so memory does not grow with the number of lanes."""

    def __init__(self, bundle: Path, variant: str = "fp32", limits: ServiceLimits = ServiceLimits(),
                 scores: ScoresSpec = ScoresSpec()):
        first = Predictor.from_pretrained(bundle, settings=InferenceSettings(backend="onnx", onnx_variant=variant))
        self.lanes: queue.Queue[Predictor] = queue.Queue()
        self.lanes.put(first)
        for _ in range(limits.workers - 1):
            self.lanes.put(Predictor(first.kind, first.model, first.taxonomy, first.rule, first.context,
                                     load_tokenizer(bundle), first.settings))
        meta = read_bundle_meta(bundle)
        self.metadata = {"model_name": meta["model_name"], "taxonomy_version": meta["taxonomy_version"],
                         "taxonomy_hash": meta["taxonomy_hash"], "variant": variant, "graphs": meta["graphs"],
                         "num_labels": meta["num_labels"], "context": meta["context"]}
        self.limits, self.scores = limits, scores

    def parse(self, body: bytes) -> tuple[list[dict], bool]:
        """(dialogues, return_text) of a request body, or BadRequest."""
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
            raise BadRequest(400, f"<body>: malformed JSON: {reason}") from None
        dialogues = payload.get("dialogues") if isinstance(payload, dict) else None
        if not isinstance(dialogues, list):
            raise BadRequest(400, 'dialogues: the body must be an object {"dialogues": [...]}')
        return_text = payload.get("return_text", False)
        if not isinstance(return_text, bool):
            raise BadRequest(400, "return_text: must be true or false")
        if len(dialogues) > self.limits.max_dialogues:
            raise BadRequest(413, f"dialogues: {len(dialogues)} dialogues, the limit is {self.limits.max_dialogues}")
        problems, seen = [], set()
        for i, obj in enumerate(dialogues):
            _, found = validate_line(obj, "<request>", i + 1, None, check_labels=False)
            problems += [{"field": f"dialogues[{i}]" + ("" if p.field == "<root>" else f".{p.field}"),
                          "reason": p.reason} for p in found]
            if not found and obj["dialogue_id"] in seen:
                problems.append({"field": f"dialogues[{i}].dialogue_id", "reason": "duplicate in this request"})
            if not found:
                seen.add(obj["dialogue_id"])
        if problems:
            raise BadRequest(422, f"{problems[0]['field']}: {problems[0]['reason']}", problems)
        turns = sum(len(d["turns"]) for d in dialogues)
        if turns > self.limits.max_turns:
            raise BadRequest(413, f"dialogues: {turns} turns, the limit is {self.limits.max_turns}")
        return dialogues, return_text

    def predict(self, dialogues: list[dict], return_text: bool = False) -> dict:
        lane = self.lanes.get()   # blocks only when every lane is busy; the admission limit bounds the wait
        try:
            rows = predict_rows(lane, dialogues, self.scores)
        finally:
            self.lanes.put(lane)
        if not return_text:
            for row in rows:
                del row["text"]
        return {"turns": rows}

    def handle(self, body: bytes) -> tuple[int, dict, int]:
        """(status, payload, turns scored) for one request body; runs in a worker thread."""
        try:
            dialogues, return_text = self.parse(body)
            out = self.predict(dialogues, return_text)
            return 200, out, len(out["turns"])
        except BadRequest as e:
            return e.status, {"error": e.message, "problems": e.problems}, 0


def build_app(service: TaggingService):
    """The ASGI application. Scoring runs in a thread pool of ``limits.workers`` threads, so the
    event loop keeps accepting, timing out and refusing requests while a long one is scored."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limits = service.limits
    workers = anyio.CapacityLimiter(limits.workers)
    admitted = 0

    def reply(request_id: str, status: int, payload: dict, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(payload, status_code=status, headers={"X-Request-ID": request_id, **(headers or {})})

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and int(declared) > limits.max_body_bytes:  # h11 has checked it is a number
            raise BadRequest(413, f"<body>: {declared} bytes, the limit is {limits.max_body_bytes}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(413, f"<body>: over {limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict(request: Request) -> JSONResponse:
        nonlocal admitted
        request_id, started = request.headers.get("x-request-id") or uuid.uuid4().hex[:16], time.perf_counter()
        status, payload, turns, headers = 200, {}, 0, {}
        try:
            try:
                body = await asyncio.wait_for(read_body(request), limits.read_timeout_s)
            except asyncio.TimeoutError:
                raise BadRequest(408, f"<body>: not received within {limits.read_timeout_s:g} s") from None
            except ClientDisconnect:
                raise BadRequest(400, "<body>: the client went away before sending it") from None
            if admitted >= limits.max_pending:
                status, payload = 503, {"error": f"busy: {admitted} requests in progress, retry later"}
                headers = {"Retry-After": str(limits.retry_after_s)}
            else:
                admitted += 1
                try:
                    status, payload, turns = await anyio.to_thread.run_sync(service.handle, body, limiter=workers)
                finally:
                    admitted -= 1
        except BadRequest as e:
            status, payload = e.status, {"error": e.message, "problems": e.problems}
        ms = (time.perf_counter() - started) * 1000
        access_log.info(json.dumps({"id": request_id, "path": "/predict", "status": status, "turns": turns,
                                    "ms": round(ms, 1)}))
        return reply(request_id, status, payload, headers)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(service.metadata)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"{request.url.path}: not found"}, status_code=404)

    async def bad_method(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} {request.url.path}: method not allowed"}, status_code=405)

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/healthz", healthz),
                             Route("/metadata", metadata)],
                     exception_handlers={404: not_found, 405: bad_method})


def build_server(service: TaggingService, host: str = "127.0.0.1", port: int = 8080, backlog: int = 2048):
    """A uvicorn server for the app (run it with ``.run()``; tests pass a pre-bound socket)."""
    import uvicorn

    config = uvicorn.Config(build_app(service), host=host, port=port, backlog=backlog, timeout_keep_alive=5,
                            access_log=False, log_config=None, lifespan="off")
    return uvicorn.Server(config)
