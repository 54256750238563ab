"""The annotation loop against a real Label Studio server (synthetic dialogues only).

  python scripts/labelstudio_live.py --label-studio /path/to/venv/bin/label-studio --work DIR
         [--fixtures tests/fixtures/labelstudio] [--screenshot docs/img/labelstudio_customer_first.png]

Makes a small selection from synthetic dialogues (one of them opens with the customer), runs
``profiler-annotate export``, starts Label Studio on loopback with analytics, Sentry and version
checks off, creates a project from our config, imports the tasks with their predictions, posts
annotations the way an annotator would (multi-tag, an exclusive value, an empty result, a corrected
annotation, a skipped task), exports JSON and re-imports it with ``profiler-annotate import``. A
second project holds what the server accepts but our importer must refuse. ``--fixtures`` saves the
server's exports for the default tests; ``--screenshot`` needs Playwright in Label Studio's venv
and the system Chromium. ``tests/test_labelstudio_live.py`` runs this; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from profiler.synth.corpus import generate_corpus
from profiler.synth.generator import SynthConfig
from profiler.taxonomy import Taxonomy

log = logging.getLogger("labelstudio_live")
TAXONOMY = Taxonomy.bundled("v1")
MULTI, EXCLUSIVE = "voice.negative", "pref.risk"   # two dimensions with dots in their names, one single-choice
TOKEN = "profiler-live-test-token-0123456789abcdef"
USER, PASSWORD = "annotator@example.com", "profiler-live-test"
SCREENSHOT_SCRIPT = """
import json, sys
from playwright.sync_api import sync_playwright
url, user, password, task_url, out = sys.argv[1:6]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/user/login/")
    page.fill("input[name=email]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(task_url)
    try:  # the header of the turn to tag: drawn only when the labelling screen renders
        page.wait_for_selector("text=the customer turn to tag", timeout=60000)
        rendered = True
    except Exception:
        rendered = False
    page.wait_for_timeout(3000)
    page.screenshot(path=out)
    print(json.dumps({"rendered": rendered, "errors": errors}))
    browser.close()
"""


def customer_first(dialogue: dict) -> dict:
    """The dialogue from its first customer turn on: an inbound call where the customer speaks first."""
    k = next(i for i, t in enumerate(dialogue["turns"]) if t["speaker"] == "customer")
    return {**dialogue, "dialogue_id": dialogue["dialogue_id"] + "-inbound", "channel": "inbound_call",
            "turns": dialogue["turns"][k:]}


def selection(n: int = 6) -> list[dict]:
    """``profiler-annotate select`` lines for ``n`` customer turns that carry a MULTI or EXCLUSIVE tag;
    the model is a stand-in that predicts the turn's true tags of those dimensions."""
    corpus = generate_corpus(TAXONOMY, SynthConfig(seed=3, per_tag={"test": 1}, voices=False))
    dialogues = [d for d, _ in corpus["test"]]
    dims = (MULTI, EXCLUSIVE)
    rows, seen = [], set()
    pool = [customer_first(dialogues[0])] + dialogues[1:]
    for d in pool:
        for i, t in enumerate(d["turns"]):
            tags = [x for x in t.get("labels", []) if TAXONOMY.tag(x).dimension_id in dims]
            if t["speaker"] != "customer" or (not tags and d is not pool[0]) or d["dialogue_id"] in seen:
                continue
            seen.add(d["dialogue_id"])
            plain = {**{k: v for k, v in d.items() if k != "annotation"},
                     "turns": [{"speaker": x["speaker"], "text": x["text"]} for x in d["turns"]]}
            rows.append({"dialogue": plain, "turn_index": i, "text": t["text"], "priority": 1 - len(rows) / 10,
                         "reason": {"tag": tags[0] if tags else f"{EXCLUSIVE}.conservative", "probability": None,
                                    "keyword": None},
                         "predicted": tags, "model": None, "model_version": f"stand-in@{TAXONOMY.hash[:12]}"})
            break
        if len(rows) == n:
            break
    assert rows[0]["turn_index"] == 0, "the first task must be a customer-first turn"
    return rows


class Server:
    """``label-studio start`` on 127.0.0.1 in its own data dir; ``stop`` ends it by its PID."""

    def __init__(self, binary: str, data_dir: Path):
        self.binary, self.data_dir = binary, data_dir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> float:
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir), "COLLECT_ANALYTICS": "false",
               "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LATEST_VERSION_CHECK": "false",
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        cmd = [self.binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
               "--host", self.url, "--data-dir", str(self.data_dir), "--username", USER, "--password", PASSWORD,
               "--user-token", TOKEN, "--enable-legacy-api-token"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.data_dir / "server.log", "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}; see {self.data_dir}/server.log")
            try:
                self.api("GET", "/api/version")
                return time.monotonic() - t0
            except OSError:
                time.sleep(1)
        raise TimeoutError(f"label-studio did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and its workers, nothing else
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def api(self, method: str, path: str, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


def choices(dim: str, *values: str) -> dict:
    return {"from_name": dim, "to_name": "turn", "type": "choices", "value": {"choices": list(values)}}


def project(server: Server, title: str, config: str, tasks: list[dict]) -> tuple[int, list[dict]]:
    p = server.api("POST", "/api/projects/", {"title": title, "label_config": config})
    assert p["label_config"] == config, "Label Studio rewrote the labelling config"
    server.api("POST", f"/api/projects/{p['id']}/import", tasks)
    listed = server.api("GET", f"/api/projects/{p['id']}/tasks/?page_size=1000")
    listed = listed["tasks"] if isinstance(listed, dict) else listed
    assert len(listed) == len(tasks), f"imported {len(tasks)} tasks, the server lists {len(listed)}"
    return p["id"], sorted(listed, key=lambda t: t["id"])


def annotate_all(server: Server, listed: list[dict]) -> list[dict]:
    """Post the round; returns, per task, the tags the import must give (None: nothing imported)."""
    multi = [t for t in TAXONOMY.dimensions[MULTI]]
    risk = [t for t in TAXONOMY.dimensions[EXCLUSIVE]]
    post = lambda task, result, **kw: server.api("POST", f"/api/tasks/{task['id']}/annotations/",  # noqa: E731
                                                 {"result": result, **kw})
    plan = [
        [choices(EXCLUSIVE, risk[1])],                                 # the customer-first task: one exclusive value
        [choices(MULTI, multi[0], multi[2]), choices(EXCLUSIVE, risk[0])],  # multi-tag and an exclusive value
        [],                                                             # annotated: none of these
        "corrected",
        "skipped",
        None,                                                           # never opened
    ]
    expected = []
    for task, step in zip(listed, plan):
        if step == "corrected":
            first = post(task, [choices(MULTI, multi[0])])
            time.sleep(1.1)  # updated_at must move on for the correction to be the latest
            server.api("PATCH", f"/api/annotations/{first['id']}/", {"result": [choices(MULTI, multi[1], multi[3])]})
            expected.append(sorted([multi[1], multi[3]]))
        elif step == "skipped":
            post(task, [], was_cancelled=True)
            expected.append(None)
        elif step is None:
            expected.append(None)
        else:
            post(task, step)
            expected.append(sorted(v for r in step for v in r["value"]["choices"]))
    return expected


def annotate_invalid(server: Server, listed: list[dict]) -> None:
    """What Label Studio 1.23.2 stores without complaint and our import must refuse, task by task."""
    risk = TAXONOMY.dimensions[EXCLUSIVE]
    bad = [[choices(EXCLUSIVE, TAXONOMY.tag(risk[0]).value)],          # the display value instead of the tag id
           [choices(EXCLUSIVE, risk[0], risk[1])],                      # two values in a single-choice dimension
           [choices("voice.unknown_dimension", risk[0])],               # a dimension that is not in the round
           [choices(EXCLUSIVE, risk[2])]]                               # valid: still imported
    for task, result in zip(listed, bad):
        server.api("POST", f"/api/tasks/{task['id']}/annotations/", {"result": result})


def run_cli(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "profiler.cli.annotate", *args]).returncode


def screenshot(server: Server, project_id: int, task_id: int, out: Path, ls_python: str) -> dict:
    task_url = f"{server.url}/projects/{project_id}/data?task={task_id}"
    done = subprocess.run([ls_python, "-c", SCREENSHOT_SCRIPT, server.url, USER, PASSWORD, task_url, str(out)],
                          capture_output=True, text=True, timeout=180)
    if done.returncode:
        raise RuntimeError(f"screenshot failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # a blank screen: rendered False, a TypeError


def run(binary: str, work: Path, fixtures: Path | None = None, shot: Path | None = None) -> dict:
    """The whole loop; returns timings and what came back. Raises AssertionError on a broken loop."""
    work.mkdir(parents=True, exist_ok=True)
    sel = work / "selection.jsonl"
    sel.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in selection()), encoding="utf-8")
    assert run_cli("export", str(sel), "--out-dir", str(work / "ls"), "--dimensions", f"{MULTI},{EXCLUSIVE}") == 0
    tasks = json.loads((work / "ls" / "tasks.json").read_text(encoding="utf-8"))
    config = (work / "ls" / "labeling_config.xml").read_text(encoding="utf-8")
    server, timing = Server(binary, work / "ls-data"), {}
    try:
        timing["start_s"] = round(server.start(), 1)
        pid, listed = project(server, "profiler round", config, tasks)
        expected = annotate_all(server, listed)
        export = server.api("GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true")
        assert all(len(t["predictions"]) == 1 for t in export), "a task lost its prediction"
        export_min = server.api("GET", f"/api/projects/{pid}/export?exportType=JSON_MIN&download_all_tasks=true")
        bad_pid, bad_listed = project(server, "profiler invalid", config, tasks[:4])
        annotate_invalid(server, bad_listed)
        export_bad = server.api("GET", f"/api/projects/{bad_pid}/export?exportType=JSON&download_all_tasks=true")
        page = screenshot(server, pid, listed[0]["id"], shot, str(Path(binary).parent / "python")) if shot else None
    finally:
        server.stop()
    files = {"export.json": export, "export_min.json": export_min, "export_invalid.json": export_bad}
    for name, obj in files.items():
        (work / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    by_key = {(t["data"]["dialogue_id"], t["data"]["turn_index"]): e for t, e in zip(listed, expected)}
    (work / "posted.json").write_text(json.dumps([{"dialogue_id": k[0], "turn_index": k[1], "labels": v}
                                                  for k, v in by_key.items()], ensure_ascii=False, indent=1))
    if fixtures is not None:
        fixtures.mkdir(parents=True, exist_ok=True)
        for name in [*files, "posted.json"]:
            shutil.copy(work / name, fixtures / name)
    rc = run_cli("import", str(work / "export.json"), "--output", str(work / "annotated.jsonl"))
    rc_bad = run_cli("import", str(work / "export_invalid.json"), "--output", str(work / "invalid.jsonl"))
    return {"timing": timing, "import_rc": rc, "invalid_rc": rc_bad, "expected": by_key, "page": page}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label-studio", required=True, help="the label-studio executable (its own venv)")
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--fixtures", type=Path)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    out = run(args.label_studio, args.work, args.fixtures, args.screenshot)
    log.info("server up in %s s; import rc %d (invalid export: rc %d); labelling screen: %r", out["timing"]["start_s"],
             out["import_rc"], out["invalid_rc"], out["page"])


if __name__ == "__main__":
    main()
