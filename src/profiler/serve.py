"""The reference HTTP service over an ONNX export bundle (standard library only).

  POST /predict   {"dialogues": [<dialogue>, ...]} -> {"turns": [<profiler-predict rows>]}
  GET  /healthz   {"status": "ok"}
  GET  /metadata  model name, taxonomy version + hash, graph variant, context settings

Bad input is always a 4xx naming the field: 400 malformed JSON or body shape, 413 over a size
limit, 422 contract violations (every problem listed, as ``dialogues[i].turns[j].speaker``). A
request is all-or-nothing, so a client never has to match partial answers to its dialogues.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from profiler.data.contract import validate_line
from profiler.export.runtime import read_bundle_meta
from profiler.predict.output import ScoresSpec, predict_rows
from profiler.predictor import InferenceSettings, Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLimits:
    max_body_bytes: int = 1 << 20
    max_dialogues: int = 64
    max_turns: int = 2000


class BadRequest(Exception):
    def __init__(self, status: int, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


class TaggingService:
    """Validation + the shared prediction path; one lock because tokenizer state is not thread-safe."""

    def __init__(self, bundle: Path, variant: str = "fp32", limits: ServiceLimits = ServiceLimits(),
                 scores: ScoresSpec = ScoresSpec()):
        self.predictor = Predictor.from_pretrained(bundle, settings=InferenceSettings(backend="onnx",
                                                                                      onnx_variant=variant))
        meta = read_bundle_meta(bundle)
        self.metadata = {"model_name": meta["model_name"], "taxonomy_version": meta["taxonomy_version"],
                         "taxonomy_hash": meta["taxonomy_hash"], "variant": variant, "graphs": meta["graphs"],
                         "num_labels": meta["num_labels"], "context": meta["context"]}
        self.limits, self.scores, self.lock = limits, scores, threading.Lock()

    def parse(self, body: bytes) -> list[dict]:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest(400, f"<body>: malformed JSON: {e}") from None
        dialogues = payload.get("dialogues") if isinstance(payload, dict) else None
        if not isinstance(dialogues, list):
            raise BadRequest(400, 'dialogues: the body must be an object {"dialogues": [...]}')
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
        return dialogues

    def predict(self, dialogues: list[dict]) -> dict:
        with self.lock:
            return {"turns": predict_rows(self.predictor, dialogues, self.scores)}


def make_handler(service: TaggingService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            routes = {"/healthz": lambda: {"status": "ok"}, "/metadata": lambda: service.metadata}
            if self.path not in routes:
                return self._send(404, {"error": f"{self.path}: not found"})
            self._send(200, routes[self.path]())

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/predict":
                return self._send(404, {"error": f"{self.path}: not found"})
            try:
                length = int(self.headers.get("Content-Length") or -1)
                if length < 0:
                    raise BadRequest(411, "Content-Length: required")
                if length > service.limits.max_body_bytes:
                    self._drain(length)  # read and drop it, so the client sees the answer, not a reset
                    raise BadRequest(413, f"<body>: {length} bytes, the limit is {service.limits.max_body_bytes}")
                self._send(200, service.predict(service.parse(self.rfile.read(length))))
            except BadRequest as e:
                self._send(e.status, {"error": e.message, "problems": e.problems})

        def _drain(self, length: int) -> None:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)

        def log_message(self, fmt: str, *args) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

    return Handler


def build_server(service: TaggingService, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    return server
