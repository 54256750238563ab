"""One table, models as columns: the encoder beside its baselines on the same data."""

from __future__ import annotations

ROWS = ("micro_f1", "macro_f1", "samples_f1", "micro_precision", "micro_recall", "subset_accuracy",
        "hamming_loss", "untagged_fpr")


def comparison(metrics: dict[str, dict]) -> dict:
    names = list(metrics)
    table = {key: {n: metrics[n]["headline"][key] for n in names} for key in ROWS}
    table["map"] = {n: metrics[n]["threshold_free"]["map"] for n in names}
    table["ece"] = {n: metrics[n]["calibration"]["ece"] for n in names}
    ci = {key: {n: metrics[n]["ci"].get(key) for n in names} for key in ROWS if key in metrics[names[0]]["ci"]}
    categories = sorted({c for m in metrics.values() for c in m["per_category"]})
    per_category = {c: {n: metrics[n]["per_category"].get(c, {}).get("macro_f1") for n in names} for c in categories}
    return {"models": {n: metrics[n]["model"] for n in names}, "data": metrics[names[0]]["data"],
            "headline": table, "ci": ci, "per_category_macro_f1": per_category}


def comparison_markdown(comp: dict) -> str:
    names = list(comp["models"])
    lines = [f"# Comparison on {comp['data']['path']} ({comp['data']['turns']} turns)", "",
             "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, row in comp["headline"].items():
        cells = []
        for n in names:
            ci = comp["ci"].get(key, {}).get(n)
            cells.append(_fmt(row[n]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "Macro-F1 per category:", "", "| category | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for cat, row in comp["per_category_macro_f1"].items():
        lines.append(f"| {cat} | " + " | ".join(_fmt(row[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
