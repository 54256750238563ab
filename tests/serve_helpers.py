"""Running the service on loopback and talking to it, for the serve tests."""

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

from profiler.serve import build_server


@contextlib.contextmanager
def running(service):
    """The service's uvicorn server on a free loopback port, in a thread; stopped on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = build_server(service, port=sock.getsockname()[1])
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def call(url, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def dialogues(small_corpus, n, start=0):
    lines = (small_corpus / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(x) for x in lines[start:start + n]]
