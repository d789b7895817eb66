"""`make demo`: the shipped model janja:workflow, run headless once through qgis_process on the bundled survey.

samples + 32 known Au sites -> janja:krige (Au, Ag, Cu, Pb, Zn at the classifier's cell size) ->
janja:prospectivity -> janja:evaluate, with the conventional Au thresholds alongside; then the QGIS
project out/demo.qgz (every layer styled, deposits on top), the picture out/demo_map.png and the one
report out/report.html (tools/demo_project.py).

The classifier is the bundled one (first models/*.onnx) or --model. Its card's cell_size sets the
kriging cell size. With no model at all, an untrained stand-in (tools/standin_model.py, written to
out/standin_model/, at 500 m) lets the workflow run and every map says so.

Stride: `--stride auto` (the default) times the model on one batch and picks the smallest stride
that keeps the prospectivity step near --budget seconds on this machine; give a number to force it.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qgis_headless import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

sys.path.insert(0, str(REPO))
from demo_project import (  # noqa: E402
    GPKG,
    PICTURE,
    PROJECT,
    REPORT,
    WORKFLOW_OUTPUTS,
    bundled_classifier,
    model_card_of,
    workflow_args,
)

STANDIN_CELL_SIZE = 500.0


def survey_cells(cell_size, layer="samples"):
    """Cells of the kriging grid over the survey: its extent in its UTM zone (as janja:krige picks it) / cell²."""
    from osgeo import ogr, osr

    ds = ogr.Open(str(GPKG))
    lyr = ds.GetLayerByName(layer)
    xmin, xmax, ymin, ymax = lyr.GetExtent()
    src = lyr.GetSpatialRef()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat = (xmin + xmax) / 2, (ymin + ymax) / 2
    dst = osr.SpatialReference()
    dst.ImportFromEPSG((32700 if lat < 0 else 32600) + int((lon + 180) // 6) + 1)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    pts = [tr.TransformPoint(x, y)[:2] for x in (xmin, xmax) for y in (ymin, ymax)]
    width = max(p[0] for p in pts) - min(p[0] for p in pts)
    height = max(p[1] for p in pts) - min(p[1] for p in pts)
    return (width / cell_size + 4) * (height / cell_size + 4)


def windows_per_second(model, card, threads=0):
    """The model's speed on this machine: one warm batch of random windows through onnxruntime."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else 32
    shape = (batch, card["input"]["channels"], card["input"]["height"], card["input"]["width"])
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    session.run(None, {inp.name: x})
    started = time.perf_counter()
    session.run(None, {inp.name: x})
    return batch / max(time.perf_counter() - started, 1e-6)


def auto_stride(model, card, cell_size, budget_s):
    cells = survey_cells(cell_size)
    wps = windows_per_second(model, card) / 1.3  # cutting, transforming and resizing windows costs too
    stride = 1
    while stride < 16 and cells / stride**2 / wps > budget_s:
        stride += 1
    return stride, cells, wps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out")
    parser.add_argument("--model", default="", help="ONNX classifier with its card (default: first models/*.onnx)")
    parser.add_argument("--stride", default="auto", help="'auto' or a number (1 = every cell)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for the prospectivity step (auto stride)")
    args = parser.parse_args()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model).resolve() if args.model else bundled_classifier()
    if model is None:
        sys.path.insert(0, str(REPO / "tools"))
        from standin_model import build_standin_model

        model = build_standin_model(out / "standin_model" / "standin.onnx", STANDIN_CELL_SIZE)
        print(f"No trained model in models/: using an UNTRAINED stand-in ({model}); its map only shows the "
              "workflow runs. Put the trained .onnx + card in models/ or pass --model.", flush=True)
    card = model_card_of(model)
    if not card:
        print(f"{model}: no model card (.json) beside it; the demo needs its cell_size.", file=sys.stderr)
        return 1
    cell_size = float(card["cell_size"])
    fields = [e["name"] for e in card["elements"]]  # krige what the model reads, in its order
    if args.stride == "auto":
        stride, cells, wps = auto_stride(model, card, cell_size, args.budget)
        print(f"model {card.get('name', model.name)}: ~{wps:.0f} windows/s here, ~{cells:,.0f} cells at "
              f"{cell_size:g} m -> stride {stride} (~{cells / stride**2 / wps:.0f} s for the map)", flush=True)
    else:
        stride = int(args.stride)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        env = qgis_environment(Path(tmp))
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        try:
            proc = run_qgis_process(["run", "janja:workflow", "--json", "--",
                                     *workflow_args(out, model, cell_size, stride, fields=fields)], env,
                                    timeout=1800)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    workflow_s = time.time() - started
    info = json.loads(proc.stdout).get("log", {}).get("info", [])
    for line in info.splitlines() if isinstance(info, str) else info:
        if "windows in" in line or "AUC" in line or "P–A" in line:
            print("  " + line)  # in the order the steps ran
    print(f"janja:workflow (krige -> prospectivity -> evaluate, thresholds alongside): {workflow_s:.0f} s", flush=True)
    subprocess.run([sys.executable, str(REPO / "tools" / "demo_project.py"), "--out", str(out),
                    "--model", str(model), "--cell-size", f"{cell_size:g}", "--stride", str(stride),
                    "--seconds", f"{workflow_s:.1f}"], check=True)
    print(f"\nAll in {time.time() - started:.0f} s. Look at:")
    print(f"  {out / PROJECT}   double-click: every layer styled, known deposits on top")
    print(f"  {out / REPORT}   one page: the maps, the evaluation, the ranked target areas, links")
    print(f"  {out / PICTURE}")
    print("Every output (rasters carry sidecar .qml styles):")
    for name in WORKFLOW_OUTPUTS.values():
        if (out / name).exists():
            print(f"  {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
