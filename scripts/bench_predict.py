"""Batch-inference throughput and memory: profiler-predict vs a plain Hugging Face pipeline loop.

One run, each runner in its own process (peak RSS is its own), same model weights, same inputs:
  * profiler-predict (token-budget batching, dynamic padding, inference_mode, streaming output);
  * pipeline("text-classification", top_k=None, function_to_apply="sigmoid") called once per turn on
    the same context-built (context, turn) text pairs, with the same model directory opened by
    AutoModelForSequenceClassification (the compute is the encoder's, so the comparison is fair);
  * the same pipeline given the whole list with batch_size=32 (for reference).
Also: the hardware ceiling (FLOPs per turn against this machine's measured fp32 matmul GFLOP/s),
and peak RSS of profiler-predict at two input sizes (memory must stay flat as input grows).
With --engines: profiler-predict engine=local beside engine=ray with 1 and 2 actors on this machine
(a local Ray cluster; actors share the --threads CPUs), and whether each output equals local byte for byte.
Usage (the memory check on a tiny model keeps 100k turns to two minutes; memory is about streaming,
not model size):
    profiler-train model=tiny trainer.epochs=1 data.test=null model_dir=models/tiny-bench
    python scripts/bench_predict.py --model models/e5-small-synthetic --bundle bundles/e5-small-synthetic \
        --rss-model models/tiny-bench --data data/synthetic/test.jsonl
    python scripts/bench_predict.py --model models/e5-small-synthetic --engines --skip-speed --skip-memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def replicate(data: Path, turns: int, out: Path) -> int:
    """Copies of the input dialogues under fresh ids until ``turns`` customer turns are reached."""
    rows = [json.loads(x) for x in data.read_text(encoding="utf-8").splitlines() if x.strip()]
    n, copy = 0, 0
    with open(out, "w", encoding="utf-8") as f:
        while n < turns:
            for d in rows:
                d = {**d, "dialogue_id": f"{copy}-{d['dialogue_id']}"}
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
                n += sum(t["speaker"] == "customer" for t in d["turns"])
                if n >= turns:
                    break
            copy += 1
    return n


def text_pairs(model_dir: str, data: Path) -> tuple[list[dict], list[int]]:
    """The exact (context, turn) strings profiler builds, and their token lengths."""
    from profiler.data.contract import expand_paths, iter_records
    from profiler.predict.output import customer_turns
    from profiler.predictor import TURN_COLUMNS, Predictor

    p = Predictor.from_pretrained(model_dir, settings=None)
    dialogues = [r.dialogue for r in iter_records(expand_paths(data), None, check_labels=False) if r.dialogue]
    turns = customer_turns(dialogues, p.context.max_turns)
    cols = {k: [t[k] for t in turns] for k in TURN_COLUMNS}
    lengths = [len(x) for x in p.builder(cols)["input_ids"]]
    pairs = []
    for t in turns:
        target = p.context.customer_marker + p.builder.rescue(t["text"])
        n = len(p.tokenizer(target, add_special_tokens=False)["input_ids"])
        pairs.append({"text": p.builder.select_context(t["context_speakers"], t["context_texts"], n),
                      "text_pair": target})
    return pairs, lengths


def run_profiler(model_dir: str, data: Path, backend: str = "torch", variant: str = "fp32") -> dict:
    from profiler.predict.runner import PredictJob, run_predict
    from profiler.predictor import InferenceSettings

    out = Path(tempfile.mkdtemp()) / "turns.jsonl"
    start = time.perf_counter()
    summary = run_predict(PredictJob(model_dir=Path(model_dir), inputs=[str(data)], output=out,
                                     inference=InferenceSettings(backend=backend, onnx_variant=variant)))
    return {"seconds": time.perf_counter() - start, "turns": summary["turns"], "output": str(out)}


def run_ray_engine(model_dir: str, data: Path, threads: int, actors: int) -> dict:
    """engine=ray on a local cluster: one logical CPU more than the threads, for the light read and
    validation stage; the actors split the threads."""
    import ray

    from profiler.predict.ray_engine import RaySettings, run_ray
    from profiler.predict.runner import PredictJob

    start = time.perf_counter()
    ray.init(num_cpus=threads + 1, include_dashboard=False, logging_level="ERROR")
    ready = time.perf_counter()
    out = Path(tempfile.mkdtemp()) / "turns.jsonl"
    summary = run_ray(PredictJob(model_dir=Path(model_dir), inputs=[str(data)], output=out),
                      RaySettings(actors=actors, cpus_per_actor=threads / actors))
    done = time.perf_counter()
    ray.shutdown()
    return {"seconds": done - start, "cluster_start_s": ready - start, "turns": summary["turns"],
            "output": str(out)}


def same_labels(a: str, b: str) -> float:
    """Share of turns whose decided tag sets are identical in two profiler-predict outputs."""
    with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
        pairs = [(json.loads(x)["labels"], json.loads(y)["labels"]) for x, y in zip(fa, fb)]
    return sum(x == y for x, y in pairs) / max(len(pairs), 1)


def hf_model(model_dir: str):
    """The same model directory through the plain Hugging Face Auto classes (``import profiler``
    registers the tagger with them): same weights, same pooling; without a target mask the whole
    (context, turn) pair counts as the target, which changes the scores but not the compute."""
    import profiler  # noqa: F401  registers the profiler-tagger model type
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def run_pipeline(model_dir: str, data: Path, batch_size: int) -> dict:
    from transformers import pipeline

    pairs, _ = text_pairs(model_dir, data)
    model, tokenizer = hf_model(model_dir)
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None,
                    function_to_apply="sigmoid", device="cpu", truncation=True, max_length=512)
    start = time.perf_counter()
    if batch_size == 1:
        for x in pairs:
            pipe(x)
    else:
        pipe(pairs, batch_size=batch_size)
    return {"seconds": time.perf_counter() - start, "turns": len(pairs)}


def ceiling(model_dir: str, data: Path) -> dict:
    """Useful FLOPs of the real (unpadded) turns, and this machine's measured fp32 matmul rate."""
    import torch
    from transformers import AutoConfig

    import profiler  # noqa: F401  registers the profiler-tagger config

    c = AutoConfig.from_pretrained(model_dir).encoder  # the tagger's config nests its encoder's
    _, lengths = text_pairs(model_dir, data)
    h, f, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    flops = sum(layers * (2 * n * (4 * h * h + 2 * h * f) + 4 * n * n * h) for n in lengths)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    start, reps = time.perf_counter(), 30
    for _ in range(reps):
        a @ b
    gflops = 2 * 1024 ** 3 * reps / (time.perf_counter() - start) / 1e9
    return {"flops_per_turn": flops / len(lengths), "matmul_gflops": gflops, "turns": len(lengths)}


def child(runner: str, model_dir: str, data: Path, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    result = {"profiler": lambda: run_profiler(model_dir, data),
              "profiler_onnx": lambda: run_profiler(model_dir, data, backend="onnx"),
              "profiler_int8": lambda: run_profiler(model_dir, data, backend="onnx", variant="int8"),
              "pipeline": lambda: run_pipeline(model_dir, data, 1),
              "pipeline_batched": lambda: run_pipeline(model_dir, data, 32),
              "ray1": lambda: run_ray_engine(model_dir, data, threads, 1),
              "ray2": lambda: run_ray_engine(model_dir, data, threads, 2),
              "ceiling": lambda: ceiling(model_dir, data)}[runner]()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def spawn(runner: str, model_dir: str, data: Path, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", runner, "--model", model_dir, "--data", str(data),
                          "--threads", str(threads)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{runner} failed:\n{out.stderr[-3000:]}")
    return json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a profiler model directory")
    ap.add_argument("--data", default="data/synthetic/test.jsonl")
    ap.add_argument("--turns", type=int, default=2000, help="turns for the speed comparison")
    ap.add_argument("--bundle", help="also time profiler-predict inference.backend=onnx on this export bundle")
    ap.add_argument("--rss-model", help="model for the memory check (default: --model; a small one keeps it quick)")
    ap.add_argument("--rss-turns", default="10000,100000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-speed", action="store_true", help="no runner-vs-pipeline table")
    ap.add_argument("--skip-memory", action="store_true", help="no memory-flatness table")
    ap.add_argument("--engines", action="store_true", help="engine=local vs engine=ray (1 and 2 actors)")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.model, Path(a.data), a.threads)
    tmp = Path(tempfile.mkdtemp())
    if not a.skip_speed:
        speed(a, tmp)
    if a.engines:
        engines(a, tmp)
    if not a.skip_memory:
        memory(a, tmp)


def engines(a: argparse.Namespace, tmp: Path) -> None:
    data = tmp / "engines.jsonl"
    n = replicate(Path(a.data), a.turns, data)
    rows = {r: spawn(r, a.model, data, a.threads) for r in ("profiler", "ray1", "ray2")}
    labels = {"profiler": "engine=local", "ray1": "engine=ray, 1 actor", "ray2": "engine=ray, 2 actors"}
    reference = Path(rows["profiler"]["output"]).read_bytes()
    print(f"\n{n} customer turns, {a.threads} CPU threads, model {a.model}\n")
    print("| engine | turns/s (wall, all in) | turns/s without cluster start | cluster start (s) | peak RSS of the "
          "driver (MB) | output = local, byte for byte |\n|---|---|---|---|---|---|")
    for r, label in labels.items():
        row = rows[r]
        start = row.get("cluster_start_s", 0.0)
        same = "yes" if Path(row["output"]).read_bytes() == reference else "NO"
        print(f"| {label} | {row['turns'] / row['seconds']:.1f} | {row['turns'] / (row['seconds'] - start):.1f} | "
              f"{start:.1f} | {row['peak_rss_mb']:.0f} | {same} |")


def speed(a: argparse.Namespace, tmp: Path) -> None:
    speed_data = tmp / "speed.jsonl"
    n = replicate(Path(a.data), a.turns, speed_data)
    rows = {r: spawn(r, a.model, speed_data, a.threads) for r in ("pipeline", "pipeline_batched", "profiler", "ceiling")}
    labels = {"pipeline": "HF pipeline, one call per turn", "pipeline_batched": "HF pipeline, list, batch 32",
              "profiler": "profiler-predict (torch)"}
    if a.bundle:
        rows["profiler_onnx"] = spawn("profiler_onnx", a.bundle, speed_data, a.threads)
        labels["profiler_onnx"] = "profiler-predict (ONNX Runtime fp32)"
        from profiler.export.runtime import GRAPHS

        if (Path(a.bundle) / GRAPHS["int8"]).is_file():
            rows["profiler_int8"] = spawn("profiler_int8", a.bundle, speed_data, a.threads)
            labels["profiler_int8"] = "profiler-predict (ONNX Runtime int8, gated)"
    base = rows["pipeline"]["turns"] / rows["pipeline"]["seconds"]
    ceil = rows["ceiling"]
    print(f"\n{n} customer turns, {a.threads} threads, model {a.model}\n")
    print("| runner | turns/s | vs pipeline loop | peak RSS (MB) | share of fp32 hardware ceiling | tag sets = torch |\n"
          "|---|---|---|---|---|---|")
    for r, label in labels.items():
        tps = rows[r]["turns"] / rows[r]["seconds"]
        # int8 kernels have their own (higher) peak: a share of the fp32 one would mislead
        share = "n/a (int8)" if r == "profiler_int8" else f"{tps * ceil['flops_per_turn'] / (ceil['matmul_gflops'] * 1e9):.1%}"
        agree = f"{same_labels(rows['profiler']['output'], rows[r]['output']):.1%}" if "output" in rows[r] else "-"
        print(f"| {label} | {tps:.1f} | {tps / base:.2f}x | {rows[r]['peak_rss_mb']:.0f} | {share} | {agree} |")
    print(f"\nceiling: {ceil['flops_per_turn'] / 1e9:.3f} GFLOP per turn (unpadded), measured matmul "
          f"{ceil['matmul_gflops']:.1f} GFLOP/s -> at most {ceil['matmul_gflops'] * 1e9 / ceil['flops_per_turn']:.0f} turns/s")


def memory(a: argparse.Namespace, tmp: Path) -> None:
    sizes = [int(x) for x in a.rss_turns.split(",")]
    rss_model = a.rss_model or a.model
    print(f"\nmemory flatness, profiler-predict, model {rss_model}\n\n| turns | seconds | peak RSS (MB) | vs smallest |\n|---|---|---|---|")
    first = None
    for size in sizes:
        path = tmp / f"rss-{size}.jsonl"
        got = replicate(Path(a.data), size, path)
        r = spawn("profiler", rss_model, path, a.threads)
        first = first or r["peak_rss_mb"]
        print(f"| {got} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / first:.3f}x |")


if __name__ == "__main__":
    main()
