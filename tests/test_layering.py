"""Layering: what scores, exports or serves a model must not pull in the training code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCORING_SIDE = ["profiler.evaluation", "profiler.export.run", "profiler.serve", "profiler.predict.runner",
                "profiler.report.render", "profiler.cli.eval", "profiler.cli.export", "profiler.cli.predict",
                "profiler.cli.serve"]


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_scoring_side_does_not_import_training():
    # a fresh interpreter: in this one, other tests have long imported profiler.training
    code = ("import importlib, json, sys\n"
            f"for m in {SCORING_SIDE!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('profiler.training'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_turn_helpers_live_in_data():
    from profiler.data import labels
    from profiler.training import data as training_data

    # training reads labelled turns through the same function evaluation and export use
    assert training_data.load_turns is labels.load_turns
    assert labels.load_turns.__module__ == "profiler.data.labels"
