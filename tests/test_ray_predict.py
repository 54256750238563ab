"""profiler-predict engine=ray on a local Ray cluster (CPU): byte-equal to engine=local, resumable
after an actor failure with no gap and no duplicate, and refusing a changed model on resume."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from profiler.cli.predict import predict

import ray  # noqa: E402  (the cluster extra: scripts/setup.sh installs it for CI)

COUNTS = ("records", "dialogues", "rejected", "turns")
OUTPUTS = ("turns.jsonl", "errors.jsonl", "profiles.jsonl", "dialogues.jsonl")
# fractional CPUs: two actors holding both CPUs of the test cluster would starve the read/validate stage
RAY = ["engine=ray", "engine.cpus_per_actor=0.5", "engine.validate_cpus=0.25", "chunk_dialogues=6",
       "num_threads=1"]


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def overrides(model_dir, data, out, *extra):
    return [f"model_dir={model_dir}", f"input={data}", f"output={out}", f"hydra.run.dir={out.parent}/hydra", *extra]


@pytest.fixture(scope="session")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def messy_input(small_corpus, tmp_path_factory):
    """Two files with bad lines and duplicate ids: inside a chunk, across chunks and across files."""
    d = tmp_path_factory.mktemp("messy")
    dev, test = read_jsonl(small_corpus / "dev.jsonl")[:14], read_jsonl(small_corpus / "test.jsonl")[:9]
    a = [json.dumps(x, ensure_ascii=False) for x in dev]
    a[2] = "{not json"
    a[5] = json.dumps({"dialogue_id": "x", "turns": []})
    a.insert(7, json.dumps(dev[6], ensure_ascii=False))     # duplicate in the next line
    a.insert(12, json.dumps(dev[0], ensure_ascii=False))    # duplicate chunks later
    b = [json.dumps(x, ensure_ascii=False) for x in test]
    b.insert(3, json.dumps(dev[9], ensure_ascii=False))     # duplicate across files
    b.insert(5, "")                                         # blank lines are skipped by both engines
    (d / "a.jsonl").write_text("\n".join(a) + "\n", encoding="utf-8")
    (d / "b.jsonl").write_text("\n".join(b) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def local_reference(tiny_model_dir, messy_input, tmp_path_factory):
    from hydra import compose, initialize_config_module

    out = tmp_path_factory.mktemp("local") / "turns.jsonl"
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        cfg = compose(config_name="predict", overrides=overrides(tiny_model_dir, messy_input, out,
                                                                 "chunk_dialogues=6", "num_threads=1"))
    summary = predict(cfg)
    assert summary["rejected"] == 5  # two bad lines, three duplicates: the fixture really is messy
    return out.parent, summary


def assert_same_outputs(got_dir, ref_dir):
    for name in OUTPUTS:
        assert (got_dir / name).read_bytes() == (ref_dir / name).read_bytes(), name


@pytest.mark.slow  # a Ray cluster's worker processes, ~35 s
def test_actor_failure_then_resume_equals_local_byte_for_byte_and_a_changed_model_is_refused(
        ray_cluster, tiny_model_dir, messy_input, local_reference, compose_cfg, tmp_path):
    ref_dir, ref = local_reference
    out = tmp_path / "turns.jsonl"
    parts = tmp_path / "turns.jsonl.parts"
    with pytest.raises(Exception, match="fault injection"):
        predict(compose_cfg("predict", overrides(tiny_model_dir, messy_input, out, *RAY,
                                                 "engine.fail_after_batches=2")))
    committed = sorted(p.name for p in parts.glob("*.parquet"))
    assert len(committed) == 2 and not out.exists()
    # Ray retries are at-least-once: a second copy of a committed chunk must not duplicate a line
    shutil.copy(parts / committed[0], parts / committed[0].replace(".parquet", ".retry.parquet"))

    changed = tmp_path / "model"
    shutil.copytree(tiny_model_dir, changed)
    decision = json.loads((changed / "decision.json").read_text())
    (changed / "decision.json").write_text(json.dumps({**decision, "note": "retuned"}))
    with pytest.raises(RuntimeError, match="unfinished parts"):
        predict(compose_cfg("predict", overrides(changed, messy_input, out, *RAY)))

    # two actors this time (which actor scores which chunk must not matter), and merge=none: the Parquet
    # dataset and its manifest are the product
    predict(compose_cfg("predict", overrides(tiny_model_dir, messy_input, out, *RAY, "engine.actors=2",
                                             "engine.merge=none")))
    manifest = json.loads((parts / "manifest.json").read_text())
    assert manifest["complete"] and {k: manifest[k] for k in COUNTS} == {k: ref[k] for k in COUNTS}
    assert not out.exists()
    table = pq.ParquetDataset([str(parts / p) for p in manifest["parts"]]).read()
    rows = sorted(zip(*(table[c].to_pylist() for c in ("file", "line", "seq", "kind", "text"))))
    keys = [r[:3] for r in rows]
    assert len(set(keys)) < len(keys), "the stray copy is still in the dataset: readers dedupe by key"
    rows = [r for i, r in enumerate(rows) if i == 0 or keys[i] != keys[i - 1]]
    for kind, name in (("t", "turns.jsonl"), ("e", "errors.jsonl")):
        assert "".join(r[4] for r in rows if r[3] == kind) == (ref_dir / name).read_text(encoding="utf-8")

    # every chunk is committed: this run only merges, and must give the local engine's bytes
    summary = predict(compose_cfg("predict", overrides(tiny_model_dir, messy_input, out, *RAY)))
    assert summary["turns_scored_now"] == 0
    assert_same_outputs(out.parent, ref_dir)
    assert {k: summary[k] for k in COUNTS} == {k: ref[k] for k in COUNTS}
    assert not parts.exists()
    errors = read_jsonl(out.parent / "errors.jsonl")
    assert sum(e["reason"].startswith("duplicate dialogue_id") for e in errors) == 3
