"""`make demo`: every algorithm of the plugin, headless through qgis_process, on the bundled survey.

Until the prospectivity step exists: kriges the bundled Western Australia stream sediments (Au, Ag,
Cu, Pb, Zn), separates Au anomalies (thresholds, C–A fractal, robust multivariate distance) and
scores the kriged Au map and the Au samples against the 32 known Au sites; everything goes to out/.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from qgis_headless import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

GPKG = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
SAMPLES = f"{GPKG}|layername=samples"
SITES = f"{GPKG}|layername=au_sites"
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
        steps = [
            ("janja:krige", {"INPUT": SAMPLES, "FIELDS": ELEMENTS, "TRANSFORM": 0, "CELL_SIZE": 500,
                             "NEIGHBOURS": 0, "OUTPUT": out / "elements.tif",
                             "VARIANCE": out / "elements_variance.tif",
                             "CV_TABLE": out / "cross_validation.gpkg", "REPORT": out / "kriging_report.html"}),
            ("janja:thresholds", {"RASTER": out / "elements.tif", "BAND": 1, "METHOD": 1,
                                  "OUTPUT_RASTER": out / "au_mad_classes.tif",
                                  "REPORT": out / "au_thresholds_report.html"}),
            ("janja:fractal", {"RASTER": out / "elements.tif", "BAND": 1, "N_SEGMENTS": 3,
                               "OUTPUT_RASTER": out / "au_ca_classes.tif", "REPORT": out / "au_ca_report.html"}),
            ("janja:robust_mahalanobis", {"STACK": out / "elements.tif",
                                          "OUTPUT_RASTER": out / "multivariate_distance.tif",
                                          "REPORT": out / "multivariate_report.html"}),
            ("janja:evaluate", {"SCORE_RASTER": out / "elements.tif", "BAND": 1, "DEPOSITS": SITES,
                                "TABLE": out / "au_map_evaluation.csv", "REPORT": out / "au_map_evaluation.html"}),
            ("janja:evaluate", {"SCORE_POINTS": SAMPLES, "SCORE_FIELD": "Au_ppm", "CONCENTRATION": "true",
                                "CENSORED": 1, "DEPOSITS": SITES, "TABLE": out / "au_samples_evaluation.csv",
                                "REPORT": out / "au_samples_evaluation.html"}),
        ]
        written = []
        for alg, params in steps:
            args = ["run", alg, "--json", "--"]
            for key, value in params.items():
                args += [f"{key}={v}" for v in value] if isinstance(value, list) else [f"{key}={value}"]
            started = time.time()
            try:
                proc = run_qgis_process(args, env)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 1
            results = json.loads(proc.stdout)["results"]
            numbers = {k: v for k, v in results.items() if isinstance(v, int | float)}
            summary = ", ".join(f"{k} {v:.3g}" for k, v in numbers.items())
            print(f"{alg:26s} {time.time() - started:5.1f} s  {summary}", flush=True)
            written += [v for v in results.values() if isinstance(v, str) and v.startswith(str(out))]
    print("\nWrote (open the .tif files in QGIS: their sidecar .qml styles apply automatically):")
    for path in sorted(set(written)):
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
