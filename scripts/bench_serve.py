"""profiler-serve under concurrent load: today's ASGI service against the earlier standard-library one.

Each server runs in its own process on loopback, over the same export bundle; the earlier server's
code is taken from git (``--baseline-rev``), so the comparison is measured in one run, not
remembered. For 1, 8, 64 and 200 concurrent clients (each sending ``--requests`` requests of one
dialogue, a new connection per request as simple clients do), the table gives answered requests,
connection errors, 503s, customer turns scored per second and p50/p99 latency.

    python scripts/bench_serve.py --bundle bundles/e5-small-synthetic --data data/synthetic/test.jsonl
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SERVERS = ("baseline", "current")


def serve(kind: str, bundle: str, port: int, workers: int, module_dir: str | None) -> None:
    """Child process: run one server until killed."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    if kind == "baseline":
        sys.path.insert(0, module_dir)
        import serve_baseline as old

        server = old.build_server(old.TaggingService(Path(bundle)), port=port)
        server.serve_forever()
        return
    from profiler.serve import ServiceLimits, TaggingService, build_server

    limits = ServiceLimits(workers=workers, max_pending=256)
    build_server(TaggingService(Path(bundle), limits=limits), port=port).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not come up")


def one_request(port: int, body: bytes) -> tuple[str, float, int]:
    """(outcome, seconds, turns): outcome is ok, 503, http-<status> or the connection error's name."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__, time.perf_counter() - started, 0
    seconds = time.perf_counter() - started
    if response.status == 200:
        return "ok", seconds, len(json.loads(payload)["turns"])
    return ("503" if response.status == 503 else f"http-{response.status}"), seconds, 0


def wave(port: int, bodies: list[bytes], clients: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(lambda b: one_request(port, b), bodies))
    wall = time.perf_counter() - started
    ok = [r for r in results if r[0] == "ok"]
    latencies = np.array([r[1] for r in ok]) * 1000 if ok else np.array([np.nan])
    return {"requests": len(results), "ok": len(ok), "conn_errors": sum(r[0] not in ("ok", "503") and
                                                                          not r[0].startswith("http-")
                                                                          for r in results),
            "503": sum(r[0] == "503" for r in results), "turns_per_s": sum(r[2] for r in ok) / wall,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", required=True, help="dialogue JSONL; each request sends one dialogue")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 200])
    ap.add_argument("--requests", type=int, default=2, help="requests per client per wave")
    ap.add_argument("--workers", type=int, default=2, help="scoring lanes of the current server")
    ap.add_argument("--baseline-rev", default="8ffffeb", help="git revision holding the earlier serve.py")
    ap.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--module-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.bundle, args.port, args.workers, args.module_dir)

    dialogues = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines() if x.strip()]
    module_dir = tempfile.mkdtemp()
    old = subprocess.run(["git", "show", f"{args.baseline_rev}:src/profiler/serve.py"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    Path(module_dir, "serve_baseline.py").write_text(old, encoding="utf-8")
    rows = []
    for kind in SERVERS:
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--bundle", args.bundle, "--data",
                                 args.data, "--port", str(port), "--workers", str(args.workers), "--module-dir",
                                 module_dir], env={**os.environ, "PYTHONWARNINGS": "ignore"})
        try:
            wait_up(port)
            for clients in args.clients:
                n = clients * args.requests
                bodies = [json.dumps({"dialogues": [dialogues[i % len(dialogues)]]}, ensure_ascii=False).encode()
                          for i in range(n)]
                rows.append({"server": kind, "clients": clients, **wave(port, bodies, clients)})
                print(f"{kind} {clients}: {rows[-1]}", file=sys.stderr, flush=True)
        finally:
            proc.kill()
            proc.wait()
    print(f"bundle {args.bundle}; {args.requests} requests of one dialogue per client; "
          f"current server: {args.workers} scoring lanes; baseline: serve.py at {args.baseline_rev}\n")
    print("| server | clients | requests | answered 200 | connection errors | 503 | turns/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['clients']} | {r['requests']} | {r['ok']} | {r['conn_errors']} | {r['503']} | "
              f"{r['turns_per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")


if __name__ == "__main__":
    main()
