"""`make demo`: the plugin's algorithms run headless through qgis_process on the bundled survey.

Until the prospectivity step exists this krige-s the bundled Western Australia stream sediments
(Au, Ag, Cu, Pb, Zn) and writes the stacks, cross-validation and report into out/.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from qgis_headless import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

SAMPLES = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = qgis_environment(Path(tmp))
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        started = time.time()
        krige = [
            "run", "janja:krige", "--json", "--",
            f"INPUT={SAMPLES}|layername=samples",
            *[f"FIELDS={e}" for e in ELEMENTS],
            "TRANSFORM=0", "CELL_SIZE=500", "NEIGHBOURS=0",
            f"OUTPUT={out / 'elements.tif'}",
            f"VARIANCE={out / 'elements_variance.tif'}",
            f"CV_TABLE={out / 'cross_validation.gpkg'}",
            f"REPORT={out / 'kriging_report.html'}",
        ]
        print("running: qgis_process.bin " + " ".join(krige[:3]) + " ...", flush=True)
        try:
            proc = run_qgis_process(krige, env)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        results = json.loads(proc.stdout)["results"]
        print(f"janja:krige finished in {time.time() - started:.0f} s on {SAMPLES.name}")
    print("\nWrote (open the .tif files in QGIS: their sidecar .qml styles apply automatically):")
    for key, path in sorted(results.items()):
        print(f"  {key:10s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
