import json
import shutil

import numpy as np
import pytest

from profiler.export.gates import ExportGateError, GateSpec
from profiler.export.run import ExportJob, export_model
from profiler.predictor import InferenceSettings, Predictor
from profiler.training.data import load_turns

ONNX = InferenceSettings(backend="onnx")


@pytest.fixture(scope="module")
def tiny_bundle(tiny_model_dir, small_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    meta = export_model(ExportJob(tiny_model_dir, out, str(small_corpus / "dev.jsonl"), format="int8"))
    return out, meta


def test_onnx_bundle_matches_torch_on_a_tiny_model(tiny_bundle, tiny_model_dir, small_corpus, taxonomy):
    bundle, meta = tiny_bundle
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff"] <= 1e-4
    assert meta["parity"]["label_agreement"] >= 0.999 and meta["parity"]["turns"] > 300
    assert {"model.onnx", "model.int8.onnx", "bundle.json", "taxonomy.tsv", "decision.json",
            "tokenizer.json"} <= {p.name for p in bundle.iterdir()}
    torch_p = Predictor.from_pretrained(tiny_model_dir)
    onnx_p = Predictor.from_pretrained(bundle, settings=ONNX)
    test = load_turns(small_corpus / "test.jsonl", taxonomy, torch_p.context.max_turns)  # not the gate's data
    (p1, d1), (p2, d2) = torch_p.predict(test), onnx_p.predict(test)
    assert np.abs(p1 - p2).max() <= 1e-4 and (d1 == d2).all(axis=1).mean() >= 0.999
    with pytest.raises(Exception, match="backend=onnx"):
        Predictor.from_pretrained(bundle)   # a bundle is not a torch model directory


@pytest.mark.slow
def test_onnx_bundle_matches_torch_on_the_real_default_encoder(e5_trained, small_corpus, tmp_path):
    from profiler.report.card import card_from_files, render_card

    model_dir, _ = e5_trained
    meta = export_model(ExportJob(model_dir, tmp_path / "e5", str(small_corpus / "dev.jsonl"), format="onnx"))
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff"] <= 1e-4
    layers = json.loads((model_dir / "config.json").read_text())["encoder"]["num_hidden_layers"]
    assert meta["ort_fusions"]["MultiHeadAttention"] == layers, "the default encoder's attention is fused"
    assert "int8" not in meta["graphs"]
    card = render_card(card_from_files(model_dir, bundle=tmp_path / "e5"))   # an fp32-only bundle's card
    assert "fp32 parity vs torch" in card and "int8 (ONNX Runtime" not in card
    assert f"MultiHeadAttention ×{layers}" in card


def _ops(path) -> dict[str, int]:
    import collections

    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_graph_is_fused_for_ort_and_int8_quantizes_every_projection(tiny_bundle):
    bundle, meta = tiny_bundle
    layers = 2
    assert meta["ort_fusions"] == {"MultiHeadAttention": layers, "SkipLayerNormalization": 2 * layers,
                                   "BiasGelu": layers}
    fp32 = _ops(bundle / "model.onnx")
    assert fp32["MultiHeadAttention"] == layers and not {"Softmax", "Transpose", "Erf"} & set(fp32)
    # the fusion stops at MultiHeadAttention so Q, K and V stay MatMuls the quantizer can reach:
    # only the two kept MatMuls are float in the int8 graph
    int8 = _ops(bundle / "model.int8.onnx")
    assert int8["MatMul"] == len(meta["int8"]["kept_fp32"]) == 2 and "Attention" not in int8
    assert int8["MatMulInteger"] >= 6 * layers - 2


def test_unfused_export_is_a_plain_opset_graph(tiny_model_dir, small_corpus, tmp_path):
    import onnx

    meta = export_model(ExportJob(tiny_model_dir, tmp_path / "plain", str(small_corpus / "dev.jsonl"), format="onnx",
                                  ort_fusions=False, gate_max_turns=200))
    assert meta["parity"]["passed"] and meta["ort_fusions"] == {}
    graph = onnx.load(str(tmp_path / "plain" / "model.onnx"))
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}, "no com.microsoft ops"


def test_predict_backend_onnx_gives_the_torch_labels(tiny_bundle, tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    from profiler.cli.predict import predict

    rows = {}
    for name, model, backend in (("torch", tiny_model_dir, "torch"), ("onnx", tiny_bundle[0], "onnx")):
        out = tmp_path / name / "turns.jsonl"
        predict(compose_cfg("predict", [f"model_dir={model}", f"input={small_corpus}/test.jsonl", f"output={out}",
                                        f"inference.backend={backend}", f"hydra.run.dir={tmp_path}/h"]))
        rows[name] = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["labels"] for r in rows["torch"]] == [r["labels"] for r in rows["onnx"]]
    diffs = [abs(a["scores"][t] - b["scores"][t]) for a, b in zip(rows["torch"], rows["onnx"]) for t in a["scores"]]
    assert max(diffs) <= 1e-4


def test_int8_gate_passes_on_a_trained_model(tiny_bundle):
    _, meta = tiny_bundle
    gate = meta["int8"]
    assert gate["passed"] and gate["drop_points"] <= 1.0 and len(gate["per_tag"]) > 10
    assert 0.0 <= gate["macro_f1_int8_at_fp32_thresholds"] <= 1.0 and len(gate["kept_fp32"]) == 2


def test_int8_graph_is_decided_by_its_own_dev_tuned_thresholds(tiny_bundle, small_corpus, taxonomy):
    from profiler.decision import tune
    from profiler.evaluation import label_matrix

    bundle, meta = tiny_bundle
    own = json.loads((bundle / "decision.int8.json").read_text())
    int8 = Predictor.from_pretrained(bundle, settings=InferenceSettings(backend="onnx", onnx_variant="int8"))
    fp32 = Predictor.from_pretrained(bundle, settings=ONNX)
    assert int8.rule.thresholds == own["thresholds"] and fp32.rule.thresholds == json.loads(
        (bundle / "decision.json").read_text())["thresholds"]
    dev = load_turns(small_corpus / "dev.jsonl", taxonomy, int8.context.max_turns)
    retuned = tune(int8.predict_proba(dev), label_matrix(dev["labels"], taxonomy.index), taxonomy, fp32.rule.min_support)
    assert retuned.thresholds == own["thresholds"], "the same rule and data that tuned the fp32 thresholds"
    assert meta["int8"]["decision"] == "decision.int8.json"


def outlier_activation_model(model_dir, out, layer: int):
    """One FFN unit of ``layer`` always fires near 100 (bias +100) and its output weights are divided by
    100, so fp32 computes about what it did, but the input of that layer's FFN-output MatMul now spans
    a range dynamic uint8 quantization must stretch its single scale over."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    state = load_file(str(out / "model.safetensors"))
    prefix = next(k for k in state if k.endswith(f"layer.{layer}.intermediate.dense.bias"))[: -len("intermediate.dense.bias")]
    state[prefix + "intermediate.dense.bias"][0] += 100.0
    state[prefix + "output.dense.weight"][:, 0] /= 100.0
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out, state[prefix + "output.dense.weight"][:, 0].numpy()


@pytest.mark.slow  # quantizes twice, ~10 s
def test_int8_keeps_the_matmul_with_outlier_inputs_in_fp32(tiny_model_dir, small_corpus, taxonomy, tmp_path):
    import onnx
    from onnx import numpy_helper

    model_dir, column = outlier_activation_model(tiny_model_dir, tmp_path / "outlier", layer=1)
    dev, spread = str(small_corpus / "dev.jsonl"), {}
    test = load_turns(small_corpus / "test.jsonl", taxonomy, 4)
    for keep in (0, 1):
        bundle = tmp_path / f"keep{keep}"
        meta = export_model(ExportJob(model_dir, bundle, dev, format="int8", int8_keep_fp32=keep,
                                      gate=GateSpec(max_f1_drop=100.0)))
        p32 = Predictor.from_pretrained(bundle, settings=ONNX).predict_proba(test)
        p8 = Predictor.from_pretrained(bundle, settings=InferenceSettings(backend="onnx", onnx_variant="int8"))
        spread[keep] = float(np.abs(p8.predict_proba(test) - p32).max())
    kept = meta["int8"]["kept_fp32"][0]["node"]
    graph = onnx.load(str(bundle / "model.int8.onnx"))
    node = next(n for n in graph.graph.node if n.name == kept)
    weights = {w.name: numpy_helper.to_array(w) for w in graph.graph.initializer}
    assert node.op_type == "MatMul" and np.allclose(weights[node.input[1]][0], column), \
        "the FFN-output MatMul of the altered layer, left unquantized"
    assert spread[1] < spread[0] / 2, spread


def outlier_broken_model(model_dir, out):
    """Breaks int8 but not fp32: a hidden feature that is exactly zero (LayerNorm gain and bias 0)
    gets a huge weight into every FFN unit. fp32 multiplies it by 0; int8's per-channel scale is set
    by the outlier, so every normal weight of that matrix rounds to zero."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    state = load_file(str(out / "model.safetensors"))
    for name in [k for k in state if k.endswith("attention.output.LayerNorm.weight")]:
        prefix = name[: -len("attention.output.LayerNorm.weight")]
        state[name][0], state[prefix + "attention.output.LayerNorm.bias"][0] = 0.0, 0.0
        state[prefix + "intermediate.dense.weight"][:, 0] = 1e4
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def test_int8_gate_fails_on_a_deliberately_broken_model(tiny_model_dir, small_corpus, tmp_path):
    broken = outlier_broken_model(tiny_model_dir, tmp_path / "broken")
    with pytest.raises(ExportGateError, match="int8 gate failed"):
        export_model(ExportJob(broken, tmp_path / "bundle", str(small_corpus / "dev.jsonl"), format="int8"))
    assert not (tmp_path / "bundle").exists() and (tmp_path / "bundle.rejected" / "bundle.json").is_file()
    meta = json.loads((tmp_path / "bundle.rejected" / "bundle.json").read_text())
    assert meta["parity"]["passed"], "fp32 is unharmed: only int8 breaks"


def test_parity_gate_fails_loudly(tiny_model_dir, small_corpus, tmp_path):
    with pytest.raises(ExportGateError, match="parity"):
        export_model(ExportJob(tiny_model_dir, tmp_path / "b", str(small_corpus / "dev.jsonl"), format="onnx",
                               gate=GateSpec(max_abs_diff=-1.0), gate_max_turns=50))
    assert not (tmp_path / "b").exists()


def test_triton_repository_layout(tiny_bundle):
    bundle, meta = tiny_bundle
    for variant in ("fp32", "int8"):
        config = (bundle / "triton" / f"profiler_{variant}" / "config.pbtxt").read_text()
        assert 'backend: "onnxruntime"' in config and "dynamic_batching" in config
        assert all(f'name: "{n}"' in config for n in meta["inputs"]) and "dims: [ 95 ]" in config
        assert (bundle / "triton" / f"profiler_{variant}" / "1" / "model.onnx").stat().st_size > 1000


def test_model_card_numbers_equal_metrics_json(tiny_bundle, tiny_model_dir, small_corpus, tmp_path):
    from profiler.evaluation import build_metrics, evaluate
    from profiler.report.card import MISSING, card_from_files, render_card

    metrics = build_metrics(evaluate(tiny_model_dir, small_corpus / "test.jsonl"), resamples=100)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    text = render_card(card_from_files(tiny_model_dir, path, tiny_bundle[0]))
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy"):
        lo, hi = metrics["ci"][key]
        assert f"| {key} | {metrics['headline'][key]:.4f} | {lo:.4f} – {hi:.4f} |" in text, key
    assert f"eval_macro_f1: {metrics['headline']['macro_f1']:.4f}" in text
    assert "synthetic" in text and metrics["model"]["taxonomy_hash"] in text
    assert f"max |Δp| {tiny_bundle[1]['parity']['max_abs_diff']:.2e}" in text
    bare = render_card(card_from_files(tiny_model_dir))   # no evaluation, no export: said, not invented
    assert bare.count(MISSING) >= 2 and "| micro_f1 |" not in bare
