"""profiler-serve under load and abuse, on loopback: no reset connections, no client blocking
another, a 4xx (never silence) for every malformed request, 503 + Retry-After on overload."""

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from profiler.serve import ServiceLimits, TaggingService
from serve_helpers import call, dialogues, running


def raw_request(url: str, data: bytes, timeout: float = 30) -> bytes:
    """Send bytes as they are (bad headers included) and return whatever comes back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        return read_response(s)


def read_response(s: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
            break
    return b"".join(chunks)


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ")[1])


def test_200_concurrent_requests_all_answered_correctly(serve_bundle, small_corpus):
    service = TaggingService(serve_bundle, limits=ServiceLimits(max_pending=256, workers=2))
    batches = [dialogues(small_corpus, 1, start=i % 40) for i in range(200)]
    with running(service) as url:
        expected = {i: call(url, "/predict", {"dialogues": batches[i]}) for i in range(40)}
        with ThreadPoolExecutor(max_workers=200) as pool:
            got = list(pool.map(lambda b: call(url, "/predict", {"dialogues": b}), batches))
    assert all(status == 200 for status, _ in got)
    assert all(got[i] == expected[i % 40] for i in range(200))


def test_overload_gets_503_with_retry_after_not_a_reset(serve_bundle, small_corpus):
    service = TaggingService(serve_bundle, limits=ServiceLimits(max_pending=1, workers=1))
    gate, entered = threading.Event(), threading.Event()
    original = service.predict

    def slow_predict(*args, **kwargs):  # hold the one admitted request until the others were refused
        entered.set()
        gate.wait(30)
        return original(*args, **kwargs)

    service.predict = slow_predict
    body = json.dumps({"dialogues": dialogues(small_corpus, 1)}).encode()
    request = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    with running(service) as url, ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(raw_request, url, request)
        assert entered.wait(30)   # the first request is being scored
        refused = [raw_request(url, request) for _ in range(5)]
        gate.set()
        assert status_of(first.result()) == 200
    for response in refused:
        assert status_of(response) == 503 and b"retry-after: 1" in response.lower()


def test_a_slow_client_does_not_block_others(serve_bundle, small_corpus):
    service = TaggingService(serve_bundle, limits=ServiceLimits(read_timeout_s=2, workers=1))
    with running(service) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=30)
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"dialogues\": [")
        status, body = call(url, "/predict", {"dialogues": dialogues(small_corpus, 2)})  # while the slow one hangs
        assert status == 200 and body["turns"]
        answer = read_response(slow)   # then the slow one is timed out with a 408, not left holding anything
        slow.close()
    assert status_of(answer) == 408 and b"not received within 2 s" in answer


def test_a_long_request_does_not_hold_up_a_short_one(serve_bundle, small_corpus):
    service = TaggingService(serve_bundle, limits=ServiceLimits(workers=2))
    big = dialogues(small_corpus, 60)
    order: list[str] = []
    entered = threading.Event()
    original = service.predict

    def tracked(dialogues_, return_text=False):
        if len(dialogues_) > 1:
            entered.set()
            threading.Event().wait(1.0)   # a long scoring job
        out = original(dialogues_, return_text)
        order.append("big" if len(dialogues_) > 1 else "small")
        return out

    service.predict = tracked
    with running(service) as url, ThreadPoolExecutor(max_workers=1) as pool:
        long_one = pool.submit(call, url, "/predict", {"dialogues": big})
        entered.wait(30)
        assert call(url, "/predict", {"dialogues": big[:1]})[0] == 200
        assert long_one.result()[0] == 200
    assert order == ["small", "big"]   # no global lock: the short request overtook the long one


MALFORMED = {
    "content-length not a number": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "negative content-length": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    "garbage request line": b"HELLO\r\n\r\n",
    "bad chunked body": b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
}


def _post(body: bytes) -> bytes:
    return (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize("name, request_bytes", [
    *MALFORMED.items(),
    ("deeply nested JSON", _post(b"[" * 100_000 + b"]" * 100_000)),
    ("not UTF-8", _post(b'{"dialogues": ["\xff\xfe"]}')),
    ("a JSON list, not an object", _post(b"[]")),
    ("return_text not a boolean", _post(b'{"dialogues": [], "return_text": "yes"}')),
    ("GET on /predict", b"GET /predict HTTP/1.1\r\nHost: x\r\n\r\n"),
])
def test_every_malformed_request_gets_a_4xx(malformed_url, name, request_bytes):
    response = raw_request(malformed_url, request_bytes)
    assert 400 <= status_of(response) < 500, (name, response[:300])
    assert call(malformed_url, "/healthz")[0] == 200   # and the service is still up


@pytest.fixture(scope="module")
def malformed_url(serve_bundle):
    with running(TaggingService(serve_bundle)) as url:
        yield url
