"""`make compare`: every conventional method scored the same way on the bundled WA survey.

Runs the plugin's algorithms through qgis_process (as a user would), then janja:evaluate on each
result: the OpenGADBench sample protocol (AUC mean ± SD over 20 draws, seed 42, negatives >= 5 km
from every site) and the prediction–area intersection. Writes out/comparison.md and prints it.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from qgis_headless import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

GPKG = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
SAMPLES = f"{GPKG}|layername=samples"
SITES = f"{GPKG}|layername=au_sites"
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm", "As_ppm"]
THRESHOLD_METHODS = [(0, "mean + k·SD (log10), k = 1, 2, 3"), (1, "median + k·MAD (log10), k = 1, 2, 3"),
                     (2, "Tukey upper fence (log10)"), (3, "percentiles 75/90/95/98")]


def run(env, alg, **params):
    args = ["run", alg, "--json", "--"] + [f"{k}={v}" for k, v in params.items()]
    return json.loads(run_qgis_process(args, env).stdout)["results"]


def evaluate_points(env, layer, field, concentration, work, tag):
    return run(env, "janja:evaluate", SCORE_POINTS=layer, SCORE_FIELD=field,
               CONCENTRATION=str(concentration).lower(), DEPOSITS=SITES, TABLE=work / f"{tag}.csv",
               REPORT=work / f"{tag}.html")


def row(method, score, r):
    return (f"| {method} | {score} | {r['AUC']:.3f} ± {r['AUC_SD']:.3f} | "
            f"{r['PA_PREDICTION_RATE']:.0f} % of sites in {r['PA_AREA']:.0f} % (We {r['PA_WEIGHT']:.2f}) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = qgis_environment(work)
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        for element in ELEMENTS:
            r = evaluate_points(env, SAMPLES, element, True, work, element)
            rows.append(row(f"single element, log {element.split('_')[0]}", "concentration", r))
            print(rows[-1], flush=True)
        for method, label in THRESHOLD_METHODS:
            classes = work / f"thr{method}.gpkg"
            run(env, "janja:thresholds", POINTS=SAMPLES, FIELD="Au_ppm", METHOD=method, OUTPUT_POINTS=classes,
                REPORT=work / f"thr{method}.html")
            r = evaluate_points(env, classes, "class", False, work, f"thr{method}_eval")
            rows.append(row(f"Au {label}", "class", r))
            print(rows[-1], flush=True)
        cn = work / "cn.gpkg"
        run(env, "janja:fractal", POINTS=SAMPLES, FIELD="Au_ppm", OUTPUT_POINTS=cn, REPORT=work / "cn.html")
        rows.append(row("Au concentration–number (C–N), segments by BIC", "class",
                        evaluate_points(env, cn, "class", False, work, "cn_eval")))
        print(rows[-1], flush=True)
        md = work / "md.gpkg"
        run(env, "janja:robust_mahalanobis", POINTS=SAMPLES,
            **{"FIELDS": ";".join(ELEMENTS)}, OUTPUT_POINTS=md, REPORT=work / "md.html")
        rows.append(row("robust Mahalanobis, ilr of Au Ag Cu Pb Zn As (MCD)", "distance",
                        evaluate_points(env, md, "robust_distance", False, work, "md_eval")))
        print(rows[-1], flush=True)
    header = ["| method | score | AUC, published protocol (20 draws, seed 42, ≥ 5 km) | P–A intersection |",
              "|---|---|---|---|"]
    text = "\n".join(header + rows) + "\n"
    (out / "comparison.md").write_text(text)
    print("\n" + text + f"\nwritten to {out / 'comparison.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
