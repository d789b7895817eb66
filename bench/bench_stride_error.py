"""The stride check against the truth: the bundled classifier on the WA 250 m stack at strides 2, 4, 8.

For each stride the run's own check (core/inference/stride_check.py: a seeded sample of the interpolated
cells classified exactly) states mean / 95th-percentile / max error and class changes; on a block small
enough for a stride-1 map on this 2-core machine, the true error over every interpolated cell is printed
beside it, and the time of the map and of the check. Optionally the whole stack at one stride.

    python bench/bench_stride_error.py [--block 96] [--smooth] [--strides 2,4,8] [--whole 4,8] [--threads 2]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference import prospectivity as pr  # noqa: E402
from janja_plugin.core.inference import stride_check as sc  # noqa: E402
from janja_plugin.core.inference import windows as wn  # noqa: E402
from janja_plugin.core.raster_grid import Grid  # noqa: E402

MODEL = REPO / "models" / "wa_au_inception.onnx"
STACK = Path("/work/main/out/wa/wa_stack_250m.tif")


def pick_block(stack, bands, size, smooth=False):
    """(r0, c0) of the size x size block with the widest spread of log Au (where the map changes fast), or with
    smooth the narrowest.

    A block this rich in Au lies outside the training distribution as a whole, so it runs with extrapolate.
    """
    au = np.log10(np.clip(stack.read(0, stack.nrows, [bands[0]])[0], 1e-3, None))
    best, where = -np.inf, (0, 0)
    for r0 in range(0, stack.nrows - size + 1, size // 2):
        for c0 in range(0, stack.ncols - size + 1, size // 2):
            block = au[r0:r0 + size, c0:c0 + size]
            if np.isfinite(block).mean() < 0.99:
                continue
            spread = float(np.nanpercentile(block, 95) - np.nanpercentile(block, 5))
            if smooth:
                spread = -spread
            if spread > best:
                best, where = spread, (r0, c0)
    return where


def line(name, e):
    cls = "-" if e.class_changed is None else f"{100 * e.class_changed:.1f} %"
    top = "-" if e.top_changed is None else f"{100 * e.top_changed:.1f} %"
    return (f"{name:<26} n={e.n_sample:>5}  mae {e.mae:.4f}  p95 {e.p95:.4f}  max {e.max:.4f}  "
            f"class {cls:>6}  top5 {top:>6}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack", default=str(STACK))
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--block", type=int, default=96, help="side of the block mapped at stride 1 (cells)")
    ap.add_argument("--strides", default="2,4,8")
    ap.add_argument("--whole", default="", help="also map the whole stack at these strides, e.g. 8 or 4,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smooth", action="store_true", help="the block with the narrowest log-Au spread instead")
    args = ap.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    model = mc.load_model(args.model, threads=args.threads)
    with wn.RasterStack(args.stack) as rs:
        bands = mc.match_stack(model.card, rs.names)
        r0, c0 = pick_block(rs, bands, args.block, args.smooth)
        data = rs.read(r0, r0 + args.block, list(range(len(rs.names))))[:, :, c0:c0 + args.block]
        names, crs, t = rs.names, rs.crs_wkt, rs.geotransform
        whole_shape = (rs.nrows, rs.ncols)
    grid = Grid(t[0] + c0 * t[1], t[3] + r0 * t[5], t[1], args.block, args.block)
    stack = wn.ArrayStack(data, names)
    print(f"model {model.card.name}; block {args.block} x {args.block} cells at row {r0}, col {c0} of the "
          f"{whole_shape[0]} x {whole_shape[1]} WA stack ({'narrowest' if args.smooth else 'widest'} log-Au "
          f"spread); {args.threads} ort threads",
          flush=True)
    started = time.perf_counter()
    exact = pr.run_prospectivity(stack, model, pr.ProspectivitySettings(stride=1, extrapolate=True), grid=grid,
                                 crs_wkt=crs)
    t1 = time.perf_counter() - started
    print(f"stride 1: {exact.stats.n_windows:,} windows in {t1:.1f} s ({exact.stats.n_windows / t1:.0f}/s); "
          f"{exact.stride_error.sentence()}", flush=True)
    truth = exact.probability.astype(np.float64)
    for s in strides:
        started = time.perf_counter()
        res = pr.run_prospectivity(stack, model, pr.ProspectivitySettings(stride=s, extrapolate=True), grid=grid,
                                   crs_wkt=crs)
        took = time.perf_counter() - started
        e = res.stride_error
        interp = sc.interpolated_cells(res.probability, s)
        err = np.abs(res.probability[interp] - truth[interp])
        b = np.array([res.thresholds["moderate"], res.thresholds["high"]])
        cls = np.mean(np.searchsorted(b, res.probability[interp], side="right")
                      != np.searchsorted(b, truth[interp], side="right"))
        print(f"stride {s}: {res.stats.n_windows:,} windows, map + check {took:.1f} s, of which the check "
              f"{e.seconds:.1f} s ({e.n_windows:,} windows, {100 * e.seconds / max(took - e.seconds, 1e-9):.0f} % "
              "extra)", flush=True)
        print("  " + line("measured (sample)", e))
        top = interp & ((res.probability >= sc.top_threshold(res.probability)) | (truth >= sc.top_threshold(truth)))
        top_err = np.abs(res.probability - truth)[top]
        print(f"  {'true, top 5 % cells':<26} n={int(top.sum()):>5}  mae {top_err.mean():.4f}"
              f"  (measured {e.top_mae if e.top_mae is not None else float('nan'):.4f} on {e.n_top})")
        print(f"  {'true (every interp. cell)':<26} n={int(interp.sum()):>5}  mae {err.mean():.4f}  "
              f"p95 {np.percentile(err, 95):.4f}  max {err.max():.4f}  class {100 * cls:5.1f} %", flush=True)
        if e.warning():
            print("  warning: " + e.warning(), flush=True)
    for s in [int(k) for k in args.whole.split(",") if k.strip()]:
        started = time.perf_counter()
        res = pr.run_prospectivity(args.stack, model, pr.ProspectivitySettings(stride=s))
        took = time.perf_counter() - started
        e = res.stride_error
        print(f"whole stack, stride {s}: {res.stats.n_windows:,} windows, map + check {took:.1f} s, "
              f"check {e.seconds:.1f} s ({e.n_windows:,} windows)", flush=True)
        print("  " + line("measured (sample)", e))
        print("  " + e.sentence(), flush=True)
        if e.warning():
            print("  warning: " + e.warning(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
