"""Retraining on new labels: masked loss, warm start, partial-label training, annotation round trip."""

import json
import math
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import torch

from profiler.annotate.labelstudio import import_export, labeling_config
from profiler.cli.annotate import main as annotate_main
from profiler.cli.train import train
from profiler.inputs import TurnCollator, TurnInputBuilder
from profiler.migration import Migration
from profiler.modeling import TurnTagger
from profiler.predictor import Predictor
from profiler.synth.corpus import write_corpus
from profiler.synth.generator import SynthConfig
from profiler.taxonomy import Taxonomy
from profiler.training.data import load_turns
from profiler.training.losses import LossSpec, build_loss
from profiler.training.warm_start import warm_start
from tests.conftest import REPO, tiny_train_overrides

V1, V2 = Taxonomy.bundled("v1"), Taxonomy.bundled("v2")
KYC_DIMS = [d for d in V2.dimensions if d.startswith("kyc.")]


@pytest.fixture(scope="module")
def v2_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2-corpus")
    write_corpus(out, V2, SynthConfig(seed=5, per_tag={"train": 10, "dev": 3, "test": 3}),
                 Migration.load("v1_to_v2").tags)
    return out


def batch_of(model_dir, taxonomy, path, n=24):
    model, tokenizer, _ = TurnTagger.load(model_dir)
    turns = load_turns(path, taxonomy, model.settings.context.max_turns).select(range(n))
    enc = TurnInputBuilder(tokenizer, model.settings.context, taxonomy)(turns.to_dict())
    return TurnCollator(tokenizer)([{k: enc[k][i] for k in enc} for i in range(n)])


@pytest.mark.parametrize("loss", ["bce", "bce_pos_weight", "focal", "asl"])
def test_masked_loss_takes_no_gradient_from_never_annotated_pairs(loss, tiny_model_dir, small_corpus, taxonomy):
    batch = batch_of(tiny_model_dir, taxonomy, small_corpus / "train.jsonl")
    labels, mask = batch.pop("labels"), batch.pop("label_mask")
    mask[:, 10:20] = 0.0                      # tags 10-19 never annotated on any turn
    mask[:5, :] = 0.0                         # the first five turns annotated for nothing
    fn = build_loss(LossSpec(loss), labels.sum(0), len(labels))

    def grads(targets):
        model, _, _ = TurnTagger.load(tiny_model_dir)
        fn(model(**batch).logits, targets, mask).backward()
        return model.head.weight.grad.clone(), next(model.encoder.parameters()).grad.clone()

    head, enc = grads(labels)
    assert head[10:20].abs().max() == 0.0 and head[20:].abs().max() > 0.0
    flipped = labels.clone()
    flipped[mask == 0] = 1.0 - flipped[mask == 0]   # what never-annotated pairs "say" cannot matter
    head2, enc2 = grads(flipped)
    assert torch.equal(head, head2) and torch.allclose(enc, enc2, atol=1e-7)


def test_warm_start_keeps_encoder_and_old_logits_exactly(tiny_model_dir, small_corpus, taxonomy):
    parent, _, _ = TurnTagger.load(tiny_model_dir)
    child, tokenizer, record, is_new = warm_start(tiny_model_dir, V2, Migration.load("v1_to_v2"), seed=0)
    p_state, c_state = parent.encoder.state_dict(), child.encoder.state_dict()
    assert p_state.keys() == c_state.keys() and all(torch.equal(p_state[k], c_state[k]) for k in p_state)
    batch = batch_of(tiny_model_dir, taxonomy, small_corpus / "dev.jsonl")
    batch.pop("labels"), batch.pop("label_mask")
    with torch.inference_mode():
        old, new = parent.eval()(**batch).logits, child.eval()(**batch).logits
    mapping = record["mapping"]
    kept = [(V1.index[o], V2.index[n]) for o, n in mapping.items() if o == n]
    assert len(kept) == 92
    assert torch.equal(old[:, [a for a, _ in kept]], new[:, [b for _, b in kept]])
    renamed = V2.index["basic.platform.internet_finance"]
    assert torch.equal(new[:, renamed], old[:, V1.index["basic.platform.third_party"]])
    merged, a, b = V2.index["voice.positive.system_good"], V1.index["voice.positive.system_easy"], \
        V1.index["voice.positive.system_smooth"]
    assert torch.allclose(new[:, merged], (old[:, a] + old[:, b]) / 2 + math.log(2), atol=1e-5)
    assert int(is_new.sum()) == 25 and all(V2.ids[j].startswith("kyc.") for j in torch.nonzero(is_new).flatten().tolist())
    assert record["taxonomy_hash"] == V1.hash and len(record["weights_sha256"]) == 64


def partial_label_files(corpus, tmp_path):
    """Three in four train dialogues lose their KYC labels (annotated before v2 existed); the two
    files differ only in whether they say so."""
    old_dims = [d for d in V2.dimensions if not d.startswith("kyc.")]
    masked, unmasked, hidden = [], [], []
    for n, line in enumerate((corpus / "train.jsonl").read_text(encoding="utf-8").splitlines()):
        d = json.loads(line)
        if n % 4:
            for i, t in enumerate(d["turns"]):
                kyc = [x for x in t.get("labels") or [] if x.startswith("kyc.")]
                hidden += [(d["dialogue_id"], i, x) for x in kyc]
                if "labels" in t:
                    t["labels"] = [x for x in t["labels"] if not x.startswith("kyc.")]
            unmasked.append(json.dumps({**d, "annotation": {"taxonomy_version": "v2"}}, ensure_ascii=False))
            d["annotation"] = {"taxonomy_version": "v2", "annotated": old_dims}
        else:
            unmasked.append(json.dumps(d, ensure_ascii=False))
        masked.append(json.dumps(d, ensure_ascii=False))
    for name, rows in (("masked", masked), ("unmasked", unmasked)):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return hidden


@pytest.mark.slow  # two trainings, ~40 s on 2 cores; the mask itself is checked per loss in the fast tier above
def test_without_the_mask_new_tags_learn_absent_everywhere(v2_corpus, cache_dir, compose_cfg, tmp_path):
    hidden = partial_label_files(v2_corpus, tmp_path)
    assert len(hidden) > 100
    recall, prob = {}, {}
    for name in ("masked", "unmasked"):
        # plain BCE: pos_weight from the unmasked file's (deflated) counts would partly hide the effect
        overrides = tiny_train_overrides(v2_corpus, cache_dir, tmp_path / name, "taxonomy=v2", "data.test=null",
                                         f"data.train={tmp_path}/{name}.jsonl", "loss=bce")
        train(compose_cfg("train", overrides))
        predictor = Predictor.from_pretrained(tmp_path / name / "model")
        turns = load_turns(v2_corpus / "train.jsonl", V2, predictor.context.max_turns)
        where = {(d, i): k for k, (d, i) in enumerate(zip(turns["dialogue_id"], turns["turn_index"]))}
        probs = predictor.predict_proba(turns)   # the network's own scores: what it learnt, before calibration
        pred = predictor.rule.decide(probs)
        recall[name] = float(np.mean([pred[where[(d, i)], V2.index[t]] for d, i, t in hidden]))
        prob[name] = float(np.mean([probs[where[(d, i)], V2.index[t]] for d, i, t in hidden]))
    # the hidden KYC turns were never annotated for KYC: masked, the model still leans towards their tags;
    # unmasked, it was taught they are negatives
    assert prob["masked"] > 2 * prob["unmasked"], (recall, prob)
    assert recall["masked"] > recall["unmasked"], (recall, prob)


def load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_select_export_annotate_import_train_round_trip(v2_corpus, tiny_model_dir, cache_dir, compose_cfg, tmp_path):
    annotator = load_script("simulate_annotator")   # the demo's stand-in for the people in the loop
    labelled = annotator.read_jsonl(v2_corpus / "test.jsonl")
    pool = tmp_path / "pool.jsonl"  # unlabelled dialogues: the v2 test split with its labels removed
    pool.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in annotator.strip(labelled)),
                    encoding="utf-8")
    keywords = tmp_path / "kw.yaml"
    keywords.write_text("kyc.purpose: [上学, 养老, 结婚, 买房, 看病, 留给]\nkyc.hobby: [旅游, 收藏, 养生, 车]\n",
                        encoding="utf-8")
    selection = tmp_path / "selection.jsonl"
    with pytest.raises(SystemExit) as code:   # the v1 parent knows the risk tags, not the KYC ones: keywords
        annotate_main(["select", "--input", str(pool), "--output", str(selection), "--model", str(tiny_model_dir),
                       "--taxonomy", "v2", "--tags", "kyc.purpose,kyc.hobby,pref.risk", "--keywords", str(keywords),
                       "--n", "40", "--per-dialogue", "1"])
    assert code.value.code == 0
    picked = [json.loads(x) for x in selection.read_text(encoding="utf-8").splitlines()]
    assert 10 <= len(picked) <= 40
    assert len({p["dialogue"]["dialogue_id"] for p in picked}) == len(picked)          # per-dialogue cap
    assert len({p["text"] for p in picked}) == len(picked)                              # no duplicates
    assert {p["reason"]["tag"].split(".")[1] for p in picked} >= {"purpose", "hobby"}
    assert any(p["reason"]["keyword"] for p in picked) and any(p["reason"]["probability"] is not None for p in picked)
    # the model is named by its directory and taxonomy hash, never by a path of this machine
    assert {p["model_version"] for p in picked} == {f"{tiny_model_dir.parent.name}/model@{V1.hash[:12]}"}
    ls_dir = tmp_path / "ls"
    with pytest.raises(SystemExit):
        annotate_main(["export", str(selection), "--out-dir", str(ls_dir), "--taxonomy", "v2",
                       "--dimensions", "kyc.purpose,kyc.hobby,pref.risk"])
    tasks = json.loads((ls_dir / "tasks.json").read_text(encoding="utf-8"))
    assert all("labels" not in t for task in tasks for t in task["data"]["turns"])   # no answers shown
    assert all(task["predictions"][0]["score"] == p["priority"] and str(tiny_model_dir) not in json.dumps(task)
               for task, p in zip(tasks, picked))
    export = tmp_path / "ls_export.json"
    export.write_text(json.dumps(annotator.annotate(tasks, labelled), ensure_ascii=False), encoding="utf-8")
    annotated = tmp_path / "annotated.jsonl"
    with pytest.raises(SystemExit):
        annotate_main(["import", str(export), "--output", str(annotated), "--taxonomy", "v2"])
    dialogues = [json.loads(x) for x in annotated.read_text(encoding="utf-8").splitlines()]
    labelled = [t for d in dialogues for t in d["turns"] if "labels" in t]
    assert len(labelled) == len(tasks) - 1                                              # one task was cancelled
    assert all(t["annotation"]["annotator"] == "annotator@bank.example" and t["annotation"]["annotated_at"]
               and t["annotation"]["annotated"] == ["kyc.purpose", "kyc.hobby", "pref.risk"] for t in labelled)
    assert any(t["labels"] for t in labelled)
    run = tmp_path / "child"
    train(compose_cfg("train", tiny_train_overrides(v2_corpus, cache_dir, run, "taxonomy=v2", "data.test=null",
                                                    f"data.train={annotated}", f"init_from={tiny_model_dir}",
                                                    "trainer.epochs=1")))
    config = json.loads((run / "model" / "config.json").read_text())["profiler"]
    assert config["taxonomy_hash"] == V2.hash and config["warm_start"]["taxonomy_hash"] == V1.hash


def test_import_reports_bad_tasks_by_position_and_keeps_the_good_ones(tmp_path):
    data = {"dialogue_id": "d1", "turn_index": 1, "turns": [{"speaker": "agent", "text": "您好"},
                                                            {"speaker": "customer", "text": "给孩子上学用"}],
            "dimensions": ["kyc.purpose"], "taxonomy_version": "v2"}
    ok = {"from_name": "kyc.purpose", "to_name": "turn", "type": "choices",
          "value": {"choices": ["kyc.purpose.child_education"]}}
    bad = {**ok, "value": {"choices": ["pref.risk.high"]}}
    tasks = [{"id": 1, "data": data, "annotations": [{"id": 1, "completed_by": 3, "result": [ok]}]},
             {"id": 2, "data": {**data, "dialogue_id": "d2"}, "annotations": [{"id": 2, "completed_by": 3, "result": [bad]}]}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    dialogues, problems = import_export(path, V2)
    assert [d["dialogue_id"] for d in dialogues] == ["d1"]
    assert dialogues[0]["turns"][1]["labels"] == ["kyc.purpose.child_education"]
    assert [(p.file, p.line, p.field) for p in problems] == [(str(path), 2, "annotations[0].result[0].value.choices[0]")]


def test_label_studio_config_is_valid_xml_grouped_by_dimension():
    xml = labeling_config(V2, ["basic.platform", "kyc.family_role", "kyc.purpose"])
    root = ET.fromstring(xml)
    choices = {c.get("name"): c for c in root.iter("Choices")}
    assert set(choices) == {"basic.platform", "kyc.family_role", "kyc.purpose"}
    assert choices["kyc.family_role"].get("choice") == "single-radio"          # exclusive
    assert choices["kyc.purpose"].get("choice") == "multiple"
    assert all(c.get("toName") == "turn" for c in choices.values())
    assert [c.get("alias") for c in choices["kyc.purpose"]] == list(V2.dimensions["kyc.purpose"])
    assert choices["basic.platform"][-1].get("value") == "互联网金融平台"
    names = {e.get("name") for e in root.iter() if e.get("name")}
    assert {"context", "turn"} <= names and root.find("Paragraphs").get("value") == "$context"


def test_selection_favours_rare_tags_and_skips_near_duplicates():
    from profiler.annotate.select import SelectSpec, round_robin

    texts = [f"客户说法{i}号{'甲乙丙丁戊己庚辛'[i % 8]}{i * 7919 % 97}" for i in range(40)] + ["一模一样的话"] * 4
    dialogue_ids = [f"d{i}" for i in range(len(texts))]
    pair = np.zeros((len(texts), 2))
    pair[:20, 0] = np.linspace(1.0, 0.5, 20)          # a frequent tag (weight 0.25)
    pair[20:40, 1] = np.linspace(1.0, 0.5, 20)        # a rare tag (weight 1.0)
    pair[40:, 1] = 2.0                                 # four identical turns at the top of the rare tag's list
    picks = round_robin(pair, np.array([0.25, 1.0]), texts, dialogue_ids, SelectSpec(n=10, max_similarity=0.9))
    tags = [k for _, k in picks]
    assert len(picks) == 10 and tags.count(1) == 8 and tags.count(0) == 2
    assert sum(texts[i] == "一模一样的话" for i, _ in picks) == 1
    capped = round_robin(pair, np.array([0.25, 1.0]), texts, ["same"] * len(texts), SelectSpec(n=10, per_dialogue=3))
    assert len(capped) == 3


def test_eval_of_a_warm_started_model_has_a_regression_section(v2_corpus, tiny_model_dir, cache_dir, compose_cfg,
                                                               tmp_path):
    from sklearn.metrics import f1_score

    from profiler.cli.eval import evaluate_models

    run = tmp_path / "child"
    train(compose_cfg("train", tiny_train_overrides(v2_corpus, cache_dir, run, "taxonomy=v2", "data.test=null",
                                                    f"init_from={tiny_model_dir}", "trainer.epochs=1")))
    result = evaluate_models(compose_cfg("eval", [f"model_dir={run}/model", f"input={v2_corpus}/test.jsonl",
                                                  f"out_dir={tmp_path}/report", "bootstrap.resamples=20"]))
    section = result["metrics"]["model"]["regression"]
    assert section["old_tags"] == 94 and section["parent"]["taxonomy_hash"] == V1.hash
    rows = {r["tag"]: r for r in section["per_tag"]}
    assert rows["voice.positive.system_good"]["parent_tags"] == ["voice.positive.system_easy",
                                                                "voice.positive.system_smooth"]
    assert not any(t.startswith("kyc.") for t in rows)
    # the parent's F1 on a kept tag is what the parent itself scores on those turns
    parent = Predictor.from_pretrained(tiny_model_dir)
    turns = load_turns(v2_corpus / "test.jsonl", V2, parent.context.max_turns)
    _, pred = parent.predict(turns)
    tag = "pref.risk.conservative"
    truth = [tag in labels for labels in turns["labels"]]
    assert rows[tag]["parent_f1"] == pytest.approx(f1_score(truth, pred[:, V1.index[tag]], zero_division=0))
    report = (tmp_path / "report" / "model" / "report.md").read_text(encoding="utf-8")
    assert "## Regression: old tags, parent vs this model" in report
    scored = [r for r in section["per_tag"] if r["scored"]]
    assert scored and all(f"| {r['tag']} | " in report for r in scored)
