"""The annotation loop against a real Label Studio 1.23.2 server: optional, off by default.

Run it with ``LABEL_STUDIO=1`` (Label Studio is then taken from ``LABEL_STUDIO_BIN``, from this
environment if ``label_studio`` is importable, or installed once into its own venv under
``~/.cache/profiler/label-studio-1.23.2``: about 30 s and 1 GB). The server start takes 20-35 s and
about 400 MB of memory. With ``LABEL_STUDIO_SCREENSHOT=PATH`` and Playwright in Label Studio's venv
it also saves a screenshot of the labelling screen of a customer-first turn.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

VERSION = "1.23.2"
SWITCH = "LABEL_STUDIO"

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio, pytest.mark.skipif(
    os.environ.get(SWITCH) != "1" and not os.environ.get("LABEL_STUDIO_BIN"),
    reason=f"optional live Label Studio test: set {SWITCH}=1 (and optionally LABEL_STUDIO_BIN) to run it")]


def label_studio_bin() -> str:
    if os.environ.get("LABEL_STUDIO_BIN"):
        return os.environ["LABEL_STUDIO_BIN"]
    if importlib.util.find_spec("label_studio") and shutil.which("label-studio"):
        return shutil.which("label-studio")
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "profiler" / f"label-studio-{VERSION}"
    binary = venv / "bin" / "label-studio"
    if not binary.exists():  # its own venv: Label Studio pins Django, pyarrow<25 and `attr`, which shadows attrs
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={VERSION}"], check=True)
    return str(binary)


def load_live():
    spec = importlib.util.spec_from_file_location("labelstudio_live", REPO / "scripts" / "labelstudio_live.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_annotation_loop_against_a_live_label_studio(tmp_path):
    live = load_live()
    shot = Path(os.environ["LABEL_STUDIO_SCREENSHOT"]) if os.environ.get("LABEL_STUDIO_SCREENSHOT") else None
    out = live.run(label_studio_bin(), tmp_path, shot=shot)
    assert out["import_rc"] == 0
    dialogues = [json.loads(x) for x in (tmp_path / "annotated.jsonl").read_text(encoding="utf-8").splitlines()]
    got = {(d["dialogue_id"], i): t for d in dialogues for i, t in enumerate(d["turns"])}
    for key, labels in out["expected"].items():
        if labels is None:       # skipped or never annotated: nothing imported for the turn
            assert key not in got or "annotation" not in got[key]
        else:                    # every posted tag on its turn, the correction rather than the first answer
            assert sorted(got[key]["labels"]) == labels and got[key]["annotation"]["annotator"].isdigit()
    assert sum(v is not None for v in out["expected"].values()) == 4
    # what the server stored without complaint is refused per task and field; the valid task still lands
    assert out["invalid_rc"] == 3   # EXIT_REJECTED: the valid task was still imported
    errors = [json.loads(x) for x in (tmp_path / "invalid.errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["line"], e["field"]) for e in errors] == [
        (1, "annotations[0].result[0].value.choices[0]"), (2, "annotations[0].result[0].value.choices"),
        (3, "annotations[0].result[0].from_name")]
    assert len((tmp_path / "invalid.jsonl").read_text(encoding="utf-8").splitlines()) == 1
    if shot is not None:
        assert out["page"] == {"rendered": True, "errors": []} and shot.stat().st_size > 10_000
