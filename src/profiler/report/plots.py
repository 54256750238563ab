"""Report figures as embedded PNGs (base64), so report.html is one self-contained file."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import PrecisionRecallDisplay  # noqa: E402

# CJK glyphs where the machine has a font for them; tag ids (ASCII) label every axis regardless
plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def f1_bars(per_tag: list[dict]) -> str:
    rows = sorted((r for r in per_tag if r["support"] > 0), key=lambda r: r["f1"])
    fig, ax = plt.subplots(figsize=(8, max(3, 0.16 * len(rows))))
    colors = ["#bbbbbb" if r["low_support"] else "#3b75af" for r in rows]
    ax.barh([r["tag"] for r in rows], [r["f1"] for r in rows], color=colors)
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (grey: support below the reporting floor)")
    ax.tick_params(axis="y", labelsize=6)
    return _png(fig)


def pr_curves(truth: np.ndarray, probs: np.ndarray, tags: list[tuple[int, str]], mask: np.ndarray) -> str:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for j, name in tags:
        rows = mask[:, j]  # turns annotated for this tag only
        PrecisionRecallDisplay.from_predictions(truth[rows, j], probs[rows, j], name=name, ax=ax,
                                                plot_chance_level=False)
    ax.set_title("Precision-recall, worst tags by F1")
    ax.legend(fontsize=6, loc="lower left")
    return _png(fig)


def reliability(calibration: dict) -> str:
    bins = [b for b in calibration["bins"] if b["count"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="#999999", label="perfect calibration")
    ax.plot([b["mean_probability"] for b in bins], [b["positive_rate"] for b in bins], "o-", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title(f"Reliability (ECE {calibration['ece']:.4f})")
    ax.legend(fontsize=7)
    return _png(fig)


def confusion(matrix: np.ndarray, labels: list[str]) -> str:
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(matrix, cmap="Reds")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xlabel("predicted instead (false positive)")
    ax.set_ylabel("missed (false negative)")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return _png(fig)
