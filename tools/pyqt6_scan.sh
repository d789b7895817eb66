#!/usr/bin/env bash
# Qt 6 readiness: the community's PyQt5->PyQt6 migration scanner (QGIS scripts/pyqt5_to_pyqt6, on
# PyPI as qgis-pyqt5to6) over copies of janja_plugin, tools and tests; prints what it would change.
# It needs Python >= 3.12 and PyQt6, so run it in a matrix chroot:
#   tools/qgis_chroot.sh 3.44 run tools/pyqt6_scan.sh [--qgis3-incompatible-changes]
# It runs without QGIS's classes (python3 -S keeps Debian's PyQt5/QGIS out), so it checks Qt names.
set -euo pipefail
SCAN=/tmp/janja-pyqt6-scan
rm -rf "$SCAN"; mkdir -p "$SCAN/orig"
python3 -m pip install -q --root-user-action=ignore --target "$SCAN/lib" qgis-pyqt5to6 PyQt6 PyQt6-QScintilla tokenize-rt
cp -r janja_plugin tools tests "$SCAN/orig/"
find "$SCAN/orig" -name __pycache__ -prune -exec rm -rf {} +
cp -r "$SCAN/orig" "$SCAN/new"
for d in janja_plugin tools tests; do
    echo "### pyqt5to6 $* $d"
    PYTHONPATH=$SCAN/lib QT_QPA_PLATFORM=offscreen python3 -S -m pyqt5to6.pyqt5to6 "$@" "$SCAN/new/$d" || true
done
echo "### what it would change"
(cd "$SCAN" && diff -ru orig new) || true
rm -rf "$SCAN"
