"""Scaling of the whole kriging job (variogram, fit, kriging, leave-one-out, GeoTIFF writing): samples x
cells -> time and peak memory, whole-grid (krige_elements + write_stack, today's janja:krige) against
streamed row tiles (tiled_kriging.krige_elements_to_files). One element (lognormal), 32 nearest.

Each run is its own subprocess (peak memory = its ru_maxrss), every thread pool pinned to --threads.
Whole-grid runs are skipped above --whole-max cells. The samples are the gaussian field of
bench_kriging.py (nugget 0.2 + gaussian, sill 1, range 8 km on 100 km x 100 km, exp() for lognormal).

    python bench/bench_tiled.py [--sizes 2000x1000,50000x2000,1000000x3000] [--threads 1] [--whole-max 4000000]
                                [--scheduler tcp://host:8786 | --scheduler local]

--scheduler adds a "dask" run of the tiled job with its chunks solved on that Dask cluster (its workers need
this checkout on PYTHONPATH); "local" starts a LocalCluster of --threads one-thread worker processes in the
run's process (its start-up is not timed; peak MB is the driver's alone).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WKT = 'LOCAL_CS["metres",UNIT["metre",1]]'


def worker(n, side, mode, threads, out, scheduler=None):
    import numpy as np
    from bench_kriging import gaussian_field

    from janja_plugin.core.geostatistics import krige_pipeline as kp
    from janja_plugin.core.geostatistics import tiled_kriging as tk
    from janja_plugin.core.raster_grid import grid_for_extent, write_stack

    x, y, z = gaussian_field(n)
    cols = {"Au": np.exp(z)}
    grid = grid_for_extent(0, 0, 1e5, 1e5, cell=1e5 / side)
    settings = kp.KrigeSettings(neighbours=32)
    cluster = None
    if mode == "dask" and scheduler == "local":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=threads, threads_per_worker=1, processes=True, dashboard_address=":0")
        scheduler = cluster.scheduler_address
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    if mode == "whole":
        res = kp.krige_elements(x, y, cols, settings, grid, log=lambda s: None)
        write_stack(out / "p.tif", [r.prediction for r in res], list(cols), grid, WKT)
        write_stack(out / "v.tif", [r.variance for r in res], list(cols), grid, WKT)
    else:
        res = tk.krige_elements_to_files(x, y, cols, settings, grid, out / "p.tif", out / "v.tif", WKT,
                                         log=lambda s: None, workers=threads,
                                         scheduler=scheduler if mode == "dask" else None)
    wall = time.perf_counter() - t
    if cluster is not None:
        cluster.close()
    return {"wall_s": wall, "cells": grid.n_cells, "base_mb": base, "variogram": res[0].experimental.method,
            "file_mb": (out / "p.tif").stat().st_size / 2**20}


def spawn(n, side, mode, threads, timeout=3600, scheduler=None):
    out = Path(tempfile.mkdtemp(prefix="bench_tiled_"))
    cmd = [sys.executable, __file__, "--worker", f"{n}x{side}", "--mode", mode, "--threads", str(threads),
           "--out", str(out)] + (["--scheduler", scheduler] if scheduler else [])
    env = dict(os.environ, **{k: str(threads) for k in THREAD_ENV})
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    finally:
        for f in out.iterdir():
            f.unlink()
        out.rmdir()
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": ((p.stderr or p.stdout).strip().splitlines() or ["no output"])[-1][:150]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--mode", default="tiled")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="2000x1000,50000x2000,1000000x3000")
    ap.add_argument("--whole-max", type=int, default=4_000_000)
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per run before it is called failed")
    ap.add_argument("--scheduler", help="also run the tiled job on this Dask scheduler ('local': a LocalCluster)")
    args, _ = ap.parse_known_args()
    if args.worker:
        n, side = (int(v) for v in args.worker.split("x"))
        res = worker(n, side, args.mode, args.threads, Path(args.out), args.scheduler)
        res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(res))
        return 0
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; thread budget {args.threads}; "
          "one element, lognormal, 32 nearest, automatic variogram fit and leave-one-out included")
    head = (f"{'samples':>10s} {'cells':>12s} {'mode':6s} {'time s':>8s} {'peak MB':>8s} {'MB over start':>13s} "
            f"{'bytes/cell':>10s} {'variogram':>10s} {'file MB':>8s}")
    print(head)
    print("-" * len(head))
    for size in args.sizes.split(","):
        n, side = (int(v) for v in size.split("x"))
        for mode in ("whole", "tiled") + (("dask",) if args.scheduler else ()):
            if mode == "whole" and side * side > args.whole_max:
                print(f"{n:10,d} {side * side:12,d} {mode:6s} skipped (over --whole-max cells)")
                continue
            r = spawn(n, side, mode, args.threads, args.timeout, args.scheduler)
            if "error" in r:
                print(f"{n:10,d} {side * side:12,d} {mode:6s} failed: {r['error']}")
                continue
            extra = r["rss_mb"] - r["base_mb"]
            print(f"{n:10,d} {r['cells']:12,d} {mode:6s} {r['wall_s']:8.1f} {r['rss_mb']:8.0f} {extra:13.0f} "
                  f"{extra * 2**20 / r['cells']:10.1f} {r['variogram']:>10s} {r['file_mb']:8.1f}", flush=True)
    print("peak MB: the run's process (ru_maxrss); MB over start: above the process before the job (Python,")
    print("numpy, samples); bytes/cell: that divided by the cells; variogram: all pairs or sampled.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
