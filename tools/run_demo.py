"""`make demo`: the shipped model janja:workflow, run headless once through qgis_process on the bundled survey.

samples + 32 known Au sites -> janja:krige (Au, Ag, Cu, Pb, Zn at the classifier's cell size) ->
janja:prospectivity -> janja:evaluate, with the conventional Au thresholds alongside; then the QGIS
project out/demo.qgz (every layer styled, deposits on top), the picture out/demo_map.png and the one
report out/report.html (tools/demo_project.py).

The classifier is the bundled one (first models/*.onnx) or --model. Its card's cell_size sets the
kriging cell size. With no model at all, an untrained stand-in (tools/standin_model.py, written to
out/standin_model/, at 500 m) lets the workflow run and every map says so.

Stride: `--stride auto` (the default) is chosen by time and by error. The model is timed on one batch
and the smallest stride that keeps the prospectivity step near --budget seconds on this machine is run.
That run measures its own interpolation error (a sample of its interpolated cells classified exactly,
core/inference/stride_check.py; written to the map's metadata). When the 95th-percentile error exceeds
0.05 or more than 5 % of the sampled cells change class, smaller strides are probed on the kriged stack
(each sampled cell and the nodes it would be interpolated from) and the workflow runs again at the largest
probed stride within 0.05, unless that would take more than --max-factor times the budget: then the map is
kept and the line says which stride to run. Give a number to force the stride.
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
    stride_error_of,
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


def run_workflow(out, model, cell_size, stride, fields):
    """janja:workflow through qgis_process; (seconds, info log lines), or raises RuntimeError."""
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        env = qgis_environment(Path(tmp))
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        proc = run_qgis_process(["run", "janja:workflow", "--json", "--",
                                 *workflow_args(out, model, cell_size, stride, fields=fields)], env, timeout=3600)
    info = json.loads(proc.stdout).get("log", {}).get("info", [])
    return time.time() - started, info.splitlines() if isinstance(info, str) else info


def probe_smaller_strides(out, model, stride):
    """The error of strides below `stride`, probed on the stack the workflow kriged: {stride: StrideError}."""
    from janja_plugin.core.inference import model_card as mc
    from janja_plugin.core.inference import stride_check as sc
    from janja_plugin.core.inference import windows as wn

    strides = sc.strides_below(stride)
    if not strides:
        return {}
    loaded = mc.load_model(model)
    with wn.checked_stack(str(out / WORKFLOW_OUTPUTS["krige:elements"]), loaded.card) as (stack, bands, _, _):
        return sc.probe_strides(loaded, stack, bands, strides, n_sample=200)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out")
    parser.add_argument("--model", default="", help="ONNX classifier with its card (default: first models/*.onnx)")
    parser.add_argument("--stride", default="auto", help="'auto' or a number (1 = every cell)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for the prospectivity step (auto stride)")
    parser.add_argument("--max-factor", type=float, default=5.0,
                        help="auto stride: rerun at a smaller stride only if it takes at most this times the budget")
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
    try:
        workflow_s, info = run_workflow(out, model, cell_size, stride, fields)
        if args.stride == "auto" and stride > 1:
            stride, workflow_s, info = stride_by_error(out, model, cell_size, stride, fields, cells, wps, args,
                                                       workflow_s, info)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    for line in info:
        if "windows in" in line or "AUC" in line or "P–A" in line or line.startswith("Stride "):
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


def stride_by_error(out, model, cell_size, stride, fields, cells, wps, args, workflow_s, info):
    """The time-budget run measured its own error; when too large, probe smaller strides on its kriged stack
    and run again at the largest one within the limit. Returns (stride, seconds, info) of the kept run."""
    from janja_plugin.core.inference import stride_check as sc

    measured = stride_error_of(out / WORKFLOW_OUTPUTS["prospectivity:probability"])
    print(f"measured at stride {stride}: " + (measured.sentence() if measured else "no stride metadata"), flush=True)
    probe = {}
    if measured is not None and measured.too_large:
        probe = probe_smaller_strides(out, model, stride)
        for k, e in probe.items():
            print(f"  probe stride {k}: {e.n_sample} sampled cells, error mean {e.mae:.3f}, 95th percentile "
                  f"{e.p95:.3f}, max {e.max:.3f} ({e.seconds:.0f} s for the probe)", flush=True)
    chosen, reason = sc.choose_by_error(stride, measured, probe)
    print("stride choice: " + reason, flush=True)
    if chosen == stride:
        return stride, workflow_s, info
    estimate = cells / chosen**2 / wps
    if estimate > args.max_factor * args.budget:
        print(f"  stride {chosen} would take ~{estimate:.0f} s for the map, over {args.max_factor:g} x the "
              f"{args.budget:g} s budget: the stride-{stride} map is kept (its warning is in the report). Run "
              f"`python tools/run_demo.py --stride {chosen}` for a map within the error limit.", flush=True)
        return stride, workflow_s, info
    print(f"  running again at stride {chosen} (~{estimate:.0f} s for the map)", flush=True)
    seconds, info = run_workflow(out, model, cell_size, chosen, fields)
    again = stride_error_of(out / WORKFLOW_OUTPUTS["prospectivity:probability"])
    print(f"measured at stride {chosen}: " + (again.sentence() if again else "no stride metadata"), flush=True)
    return chosen, workflow_s + seconds, info


if __name__ == "__main__":
    sys.exit(main())
