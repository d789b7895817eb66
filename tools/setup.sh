#!/usr/bin/env bash
# Idempotent setup: Debian's QGIS stack (when missing) and a venv over Debian's Python with the
# packages Debian lacks. A second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="qgis python3-qgis python3-numpy python3-scipy python3-gdal python3-rasterio python3-pytest python3-venv xvfb xauth chromium"
VENV=.venv
SYS_PY=/usr/bin/python3

missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"
    else
        echo "setup: these Debian packages are missing:$missing" >&2
        echo "setup: run as root: apt-get install -y --no-install-recommends$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
    $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $missing
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV over $SYS_PY (system site packages: qgis, numpy, scipy, gdal, rasterio)"
    "$SYS_PY" -m venv --system-site-packages "$VENV"
fi

# Pin numpy to Debian's: a newer numpy in the venv breaks Debian's scipy and QGIS.
"$SYS_PY" -c 'import numpy; print("numpy==" + numpy.__version__)' > constraints.txt
want=$(cat constraints.txt requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
        -r requirements.txt -r requirements-dev.txt
    "$VENV/bin/python" -c 'import pykrige, onnxruntime, scipy, qgis.core'
    echo "$want" > "$VENV/.setup-stamp"
fi
echo "setup: ready ($VENV, QGIS $(dpkg-query -W -f='${Version}' qgis))"
