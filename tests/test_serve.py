import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from profiler.serve import ServiceLimits, TaggingService
from serve_helpers import call, dialogues, running


@pytest.fixture(scope="module")
def service_url(serve_bundle):
    limits = ServiceLimits(max_body_bytes=200_000, max_dialogues=8)
    with running(TaggingService(serve_bundle, limits=limits)) as url:
        yield url, serve_bundle


def test_health_and_metadata(service_url, taxonomy):
    url, _ = service_url
    assert call(url, "/healthz") == (200, {"status": "ok"})
    status, meta = call(url, "/metadata")
    assert status == 200 and meta["taxonomy_hash"] == taxonomy.hash and meta["taxonomy_version"] == "v1"
    assert call(url, "/nope")[0] == 404


def test_service_output_equals_profiler_predict(service_url, small_corpus, compose_cfg, tmp_path):
    from profiler.cli.predict import predict

    url, bundle = service_url
    batch = dialogues(small_corpus, 6)
    src = tmp_path / "six.jsonl"
    src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in batch), encoding="utf-8")
    out = tmp_path / "turns.jsonl"
    predict(compose_cfg("predict", [f"model_dir={bundle}", f"input={src}", f"output={out}", "inference.backend=onnx",
                                    f"hydra.run.dir={tmp_path}/h"]))
    status, got = call(url, "/predict", {"dialogues": batch, "return_text": True})
    assert status == 200
    assert got["turns"] == [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    status, lean = call(url, "/predict", {"dialogues": batch})   # by default the client's text is not echoed
    assert lean["turns"] == [{k: v for k, v in row.items() if k != "text"} for row in got["turns"]]


@pytest.mark.parametrize("raw, status, field", [
    (b"{not json", 400, "<body>"),
    (json.dumps({"dialog": []}).encode(), 400, "dialogues"),
    (json.dumps({"dialogues": [{"dialogue_id": "a", "turns": [{"speaker": "robot", "text": "hi"}]}]}).encode(),
     422, "dialogues[0].turns[0].speaker"),
    (json.dumps({"dialogues": [{"dialogue_id": "a", "turns": [{"speaker": "customer", "text": "  "}]},
                               {"turns": []}]}).encode(), 422, "dialogues[0].turns[0].text"),
    (json.dumps({"dialogues": [{"dialogue_id": "a", "turns": [{"speaker": "customer", "text": "嗯"}]}] * 9}).encode(),
     413, "dialogues"),
    (b'{"dialogues": [' + b'"x",' * 60_000 + b'"x"]}', 413, "<body>"),
])
def test_bad_requests_get_4xx_naming_the_field(service_url, raw, status, field):
    url, _ = service_url
    got_status, body = call(url, "/predict", raw=raw)
    assert got_status == status and body["error"].startswith(field), body
    assert call(url, "/healthz")[0] == 200   # the service survives


def test_contract_violations_list_every_problem(service_url):
    url, _ = service_url
    bad = {"dialogues": [{"dialogue_id": "a", "turns": [{"speaker": "robot", "text": ""}]},
                         {"dialogue_id": "a", "turns": [{"speaker": "customer", "text": "好"}]},
                         {"dialogue_id": "a", "turns": [{"speaker": "customer", "text": "好"}]}]}
    status, body = call(url, "/predict", bad)
    fields = {p["field"] for p in body["problems"]}
    assert status == 422 and {"dialogues[0].turns[0].speaker", "dialogues[0].turns[0].text",
                              "dialogues[2].dialogue_id"} <= fields


def test_concurrent_clients_get_their_own_answers(service_url, small_corpus):
    url, _ = service_url
    batches = [dialogues(small_corpus, 3, start=3 * i) for i in range(8)]
    sequential = [call(url, "/predict", {"dialogues": b}) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda b: call(url, "/predict", {"dialogues": b}), batches))
    assert concurrent == sequential and all(s == 200 for s, _ in concurrent)
    for (_, body), batch in zip(concurrent, batches):
        assert {t["dialogue_id"] for t in body["turns"]} == {d["dialogue_id"] for d in batch}
