"""Kriging benchmark: our ordinary kriging against PyKrige (C backend) and gstat (Rscript).

Kriging cases: (a) 155 Meuse samples -> 500 x 500 cells, global neighbourhood; (b) 2,000 synthetic
samples -> 1000 x 1000 cells, 32 nearest; (c) 50,000 -> 1000 x 1000, 32 nearest; (d) 1,000,000 ->
1000 x 1000, 32 nearest (anchors capped at 100,000 cells, extrapolated); (q) the quick form:
2,000 -> 200 x 200, 32 nearest. Variogram step, measured on its own: the experimental variogram and
its fit at 2,000, 50,000 and 1,000,000 samples of a field with a known (gaussian) variogram, ours
(all pairs up to 4,000 samples, 8M random pairs beyond) against our exact all-pairs table (up to
--exact-max samples) and gstat's variogram + fit.variogram.

Fairness: every contender runs in its own subprocess with the same thread budget (--threads, default
1): OMP/OPENBLAS/MKL_NUM_THREADS are set to it for all, ours gets it as its worker threads; each
prints the threads it used. Each subprocess's peak memory (ru_maxrss) is its own. Predictions are
compared: ours against the plain definition (each cell solved on its own) and against each anchor.

    python bench/bench_kriging.py [--cases abcd] [--threads 1] [--anchor-cells N] [--skip-gstat]
                                  [--skip-pykrige] [--skip-variogram] [--exact-max 50000] [--quick]
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEUSE = REPO / "tests" / "data" / "meuse"
# gstat's fit of log(zinc) on Meuse (gstat_reference/variogram_fitted_sph_logzinc.csv)
MEUSE_MODEL = (0.0506595958340181, 0.590604994234333, 897.000251792225)
SYNTH_MODEL = (0.1, 1.0, 8000.0)  # nugget, partial sill, range (m) on a 100 km x 100 km area
CASES = {
    "a": {"label": "(a) Meuse 155 -> 500x500, global", "n": 155, "cells": 500, "k": None},
    "b": {"label": "(b) 2,000 -> 1000x1000, 32 nearest", "n": 2000, "cells": 1000, "k": 32},
    "c": {"label": "(c) 50,000 -> 1000x1000, 32 nearest", "n": 50000, "cells": 1000, "k": 32},
    "d": {"label": "(d) 1,000,000 -> 1000x1000, 32 nearest", "n": 1_000_000, "cells": 1000, "k": 32,
          "anchor_cells": 100_000},
    "q": {"label": "(q) 2,000 -> 200x200, 32 nearest", "n": 2000, "cells": 200, "k": 32},
}
VARIO_SIZES = (2000, 50_000, 1_000_000)
VARIO_QUICK = (5000,)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def blas_threads():
    """The BLAS thread count this process really uses (threadpoolctl if installed, else OpenBLAS's own)."""
    try:
        from threadpoolctl import threadpool_info

        info = [f"{d['internal_api']} {d['num_threads']}" for d in threadpool_info()]
        return ", ".join(info) or "no BLAS loaded"
    except ImportError:
        pass
    import ctypes

    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    for path in paths:
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_get_num_threads"):
            return f"openblas {lib.openblas_get_num_threads()}"
    return "BLAS threads unknown"


def case_data(key):
    """Samples, target cell centres (row-major) and the variogram (nugget, psill, range)."""
    spec = CASES[key]
    if key == "a":
        d = np.genfromtxt(MEUSE / "meuse.csv", delimiter=",", names=True)
        x, y, z = d["x"], d["y"], np.log(d["zinc"])
        model = MEUSE_MODEL
    else:
        rng = np.random.default_rng(2024 + spec["n"])
        x, y = rng.random(spec["n"]) * 1e5, rng.random(spec["n"]) * 1e5
        z = np.sin(x / 9000) + np.cos(y / 13000) + 0.3 * rng.normal(size=x.size)
        model = SYNTH_MODEL
    nc = spec["cells"]
    cx = np.linspace(x.min(), x.max(), nc)
    cy = np.linspace(y.min(), y.max(), nc)
    gx, gy = np.meshgrid(cx, cy)
    return x, y, z, gx.ravel(), gy.ravel(), cx, cy, model


def cell_subset(total, limit):
    """The first `limit` cells in row-major order (whole rows), for capped anchor runs."""
    return total if limit is None else min(total, limit)


# ---------------------------------------------------------------------------------------------- workers


def worker_ours(key, out, threads):
    from janja_plugin.core.geostatistics import kriging, variogram

    x, y, z, gx, gy, _, _, (nug, ps, rng_) = case_data(key)
    model = variogram.make_model("spherical", nug, ps, rng_)
    t = time.perf_counter()
    r = kriging.ordinary_kriging(x, y, z, gx, gy, model, neighbours=CASES[key]["k"], workers=threads)
    wall = time.perf_counter() - t
    np.save(out / f"ours_{key}.npy", np.stack([r.prediction, r.variance]))
    return {"wall_s": wall, "cells": gx.size, "systems": r.n_systems,
            "threads": f"{threads} worker thread(s), BLAS held to 1 inside them; {blas_threads()} outside"}


def gaussian_field(n, seed=3, a=8000.0, nugget=0.2, waves=400):
    """n samples on 100 km x 100 km of a field with variogram nugget 0.2 + gaussian (sill 1, range a).

    Random Fourier features (as tests/core/test_variogram.py); blocks bound the memory at 10^6 samples.
    """
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1e5, n), rng.uniform(0, 1e5, n)
    w = rng.normal(scale=np.sqrt(2.0) / a, size=(waves, 2))
    phase = rng.uniform(0, 2 * np.pi, waves)
    z = np.empty(n)
    for s in range(0, n, 20000):
        z[s:s + 20000] = np.cos(np.outer(x[s:s + 20000], w[:, 0]) + np.outer(y[s:s + 20000], w[:, 1])
                                + phase).sum(axis=1)
    z *= np.sqrt(2.0 / waves)
    return x, y, z + np.sqrt(nugget) * rng.standard_normal(n)


def worker_vario(n, mode):
    """Experimental variogram + gaussian fit, timed apart: ours (default estimator) or ours exact."""
    from janja_plugin.core.geostatistics import variogram

    x, y, z = gaussian_field(n)
    t = time.perf_counter()
    ev = variogram.experimental_variogram(x, y, z, max_pairs=10**15 if mode == "exact" else None)
    t_ev = time.perf_counter() - t
    t = time.perf_counter()
    f = variogram.fit_variogram(ev, "gaussian")
    se = variogram.fit_standard_errors(ev, "gaussian")
    t_fit = time.perf_counter() - t
    return {"wall_s": t_ev + t_fit, "ev_s": t_ev, "fit_s": t_fit, "method": ev.method, "range": f.range,
            "sill": f.sill, "nugget": f.nugget, "se": se, "threads": blas_threads()}


R_VARIO = """
suppressMessages(library(gstat))
a <- commandArgs(TRUE)
d <- read.csv(a[1])
t1 <- system.time(v <- variogram(z~1, ~x+y, d))[["elapsed"]]
t2 <- system.time(f <- fit.variogram(v, vgm(1, "Gau", 8000, 0.2)))[["elapsed"]]
cat(t1, t2, f$psill[1] + f$psill[2], f$range[2], f$psill[1], "\\n")
"""


def worker_vario_gstat(n):
    x, y, z = gaussian_field(n)
    tmp = Path(tempfile.mkdtemp(prefix="bench_gstat_vario_"))
    try:
        np.savetxt(tmp / "d.csv", np.column_stack([x, y, z]), delimiter=",", header="x,y,z", comments="",
                   fmt="%.17g")
        (tmp / "v.R").write_text(R_VARIO)
        res = subprocess.run(["Rscript", str(tmp / "v.R"), str(tmp / "d.csv")], capture_output=True, text=True,
                             check=True)
        t1, t2, sill, rng_, nug = (float(v) for v in res.stdout.split()[-5:])
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return {"wall_s": t1 + t2, "ev_s": t1, "fit_s": t2, "method": "all pairs", "range": rng_, "sill": sill,
                "nugget": nug, "rss_mb": rss_kb / 1024, "threads": "1 (R is single-threaded)"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def worker_plain(key, out, n_check=20000):
    """The plain definition on a random cell subset: each cell's own system, solved by textbook LU."""
    from janja_plugin.core.geostatistics import variogram

    x, y, z, gx, gy, _, _, (nug, ps, rng_) = case_data(key)
    model = variogram.make_model("spherical", nug, ps, rng_)
    pick = np.sort(np.random.default_rng(7).choice(gx.size, size=min(n_check, gx.size), replace=False))
    k = CASES[key]["k"]
    if k is None:  # global: one dense solve per cell with numpy, no shared factorisation
        n = x.size
        a = np.ones((n + 1, n + 1))
        a[:n, :n] = model(np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]))
        a[n, n] = 0.0
        pick = pick[:2000]
        b = np.ones((n + 1, pick.size))
        b[:n] = model(np.hypot(x[:, None] - gx[None, pick], y[:, None] - gy[None, pick]))
        w = np.stack([np.linalg.solve(a, b[:, i]) for i in range(pick.size)], axis=1)
        pred, var = z @ w[:n], np.einsum("ij,ij->j", w, b)
    else:  # textbook, independent of our code path: tree query, then each cell's variogram-form system by LU
        from scipy.spatial import cKDTree

        _, idx = cKDTree(np.column_stack([x, y])).query(np.column_stack([gx[pick], gy[pick]]), k=k)
        pred, var = np.empty(pick.size), np.empty(pick.size)
        for s in range(0, pick.size, 2000):
            nb = idx[s:s + 2000]
            px, py = x[nb], y[nb]
            a = np.ones((nb.shape[0], k + 1, k + 1))
            a[:, :k, :k] = model(np.hypot(px[:, :, None] - px[:, None, :], py[:, :, None] - py[:, None, :]))
            a[:, k, k] = 0.0
            b = np.ones((nb.shape[0], k + 1))
            b[:, :k] = model(np.hypot(px - gx[pick[s:s + 2000], None], py - gy[pick[s:s + 2000], None]))
            w = np.linalg.solve(a, b[:, :, None])[:, :, 0]
            pred[s:s + 2000], var[s:s + 2000] = np.einsum("ij,ij->i", w[:, :k], z[nb]), np.einsum("ij,ij->i", w, b)
    np.save(out / f"plain_{key}.npy", np.stack([pick.astype(float), pred, var]))
    return {"cells": int(pick.size)}


def worker_pykrige(key, out, limit):
    from pykrige.ok import OrdinaryKriging

    x, y, z, _, _, cx, cy, (nug, ps, rng_) = case_data(key)
    rows = cell_subset(cy.size * cx.size, limit) // cx.size
    ok = OrdinaryKriging(x, y, z, variogram_model="spherical",
                         variogram_parameters={"sill": nug + ps, "range": rng_, "nugget": nug})
    kwargs = {"backend": "C"}
    if CASES[key]["k"]:
        kwargs["n_closest_points"] = CASES[key]["k"]
    t = time.perf_counter()
    zz, ss = ok.execute("grid", cx, cy[:rows], **kwargs)
    wall = time.perf_counter() - t
    np.save(out / f"pykrige_{key}.npy", np.stack([np.asarray(zz).ravel(), np.asarray(ss).ravel()]))
    return {"wall_s": wall, "cells": rows * cx.size, "threads": f"numpy's BLAS: {blas_threads()}"}


R_SCRIPT = """
suppressMessages(library(gstat))
a <- commandArgs(TRUE)
d <- read.csv(a[1]); g <- read.csv(a[2])
m <- vgm(as.numeric(a[5]), "Sph", as.numeric(a[6]), as.numeric(a[4]))
nmax <- as.numeric(a[7])
t <- system.time(
  r <- if (is.na(nmax)) krige(z~1, ~x+y, d, g, model=m, debug.level=0) else
       krige(z~1, ~x+y, d, g, model=m, nmax=nmax, debug.level=0))[["elapsed"]]
write.csv(data.frame(pred=r$var1.pred, var=r$var1.var), a[3], row.names=FALSE)
cat(t, "\\n")
"""


def worker_gstat(key, out, limit):
    x, y, z, gx, gy, _, _, (nug, ps, rng_) = case_data(key)
    m = cell_subset(gx.size, limit)
    tmp = Path(tempfile.mkdtemp(prefix="bench_gstat_"))
    try:
        np.savetxt(tmp / "d.csv", np.column_stack([x, y, z]), delimiter=",", header="x,y,z", comments="",
                   fmt="%.17g")
        np.savetxt(tmp / "g.csv", np.column_stack([gx[:m], gy[:m]]), delimiter=",", header="x,y",
                   comments="", fmt="%.17g")
        (tmp / "k.R").write_text(R_SCRIPT)
        k = CASES[key]["k"]
        cmd = ["Rscript", str(tmp / "k.R"), str(tmp / "d.csv"), str(tmp / "g.csv"), str(tmp / "r.csv"),
               repr(nug), repr(ps), repr(rng_), "NA" if k is None else str(k)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = np.genfromtxt(tmp / "r.csv", delimiter=",", names=True)
        np.save(out / f"gstat_{key}.npy", np.stack([r["pred"], r["var"]]))
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return {"wall_s": float(res.stdout.split()[-1]), "cells": m, "rss_mb": rss_kb / 1024,
                "threads": f"1 (R is single-threaded; BLAS limited by {THREAD_ENV[1]}={os.environ.get(THREAD_ENV[1])})"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_worker(args):
    out = Path(args.out)
    if args.worker == "vario":
        res = worker_vario(int(args.case), args.mode)
    elif args.worker == "vario_gstat":
        res = worker_vario_gstat(int(args.case))
    elif args.worker == "ours":
        res = worker_ours(args.case, out, args.threads)
    elif args.worker == "plain":
        res = worker_plain(args.case, out)
    elif args.worker == "pykrige":
        res = worker_pykrige(args.case, out, args.anchor_cells)
    else:
        res = worker_gstat(args.case, out, args.anchor_cells)
    res.setdefault("rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(res))


# ------------------------------------------------------------------------------------------- driver


def spawn(worker, key, out, anchor_cells=None, timeout=1800, threads=1, mode=""):
    """Run one worker in its own process, every thread pool pinned to `threads`."""
    cmd = [sys.executable, __file__, "--worker", worker, "--case", str(key), "--out", str(out),
           "--threads", str(threads), "--mode", mode]
    if anchor_cells:
        cmd += ["--anchor-cells", str(anchor_cells)]
    env = dict(os.environ, **{name: str(threads) for name in THREAD_ENV})
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": tail[0][:150]}


def max_rel(a, b):
    """Max |a - b| / max(|b|, 1e-300) over finite cells."""
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300)))


def gstat_available():
    if shutil.which("Rscript") is None:
        if shutil.which("apt-get") and os.geteuid() == 0:
            print("Rscript missing: apt-get install -y r-cran-gstat ...", flush=True)
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "r-cran-gstat"],
                           capture_output=True)
        if shutil.which("Rscript") is None:
            return False
    return subprocess.run(["Rscript", "-e", "library(gstat)"], capture_output=True).returncode == 0


def vario_table(sizes, out, threads, exact_max, have_gstat):
    """The variogram step alone: ours (default estimator), ours exact, gstat; fitted range and sill."""
    print(f"\nvariogram step (experimental variogram + gaussian fit; known model: nugget 0.2, sill 1.2, "
          f"range 8000 m), {threads} thread(s) each:", flush=True)
    head = (f"{'samples':>9s} {'contender':18s} {'table s':>8s} {'fit s':>7s} {'MB':>6s} {'range m':>9s} "
            f"{'sill':>7s} {'range vs exact':>15s} {'sill vs exact':>14s} {'x vs ours':>9s}  threads")
    print(head)
    print("-" * len(head))
    for n in sizes:
        runs = {"ours": spawn("vario", n, out, threads=threads, mode="default")}
        if n <= exact_max:
            runs["ours, all pairs"] = spawn("vario", n, out, threads=threads, mode="exact")
        if have_gstat and n <= exact_max:  # gstat's table is all pairs: hours at 10^6 samples
            runs["gstat"] = spawn("vario_gstat", n, out, threads=threads, timeout=3600)
        ours = runs["ours"]
        exact = runs.get("ours, all pairs") if ours.get("method") == "sampled" else ours
        for name, r in runs.items():
            if "error" in r:
                print(f"{n:9,d} {name:18s} failed: {r['error']}")
                continue
            label = name + (" (sampled)" if r["method"] == "sampled" else "")
            vs = ["", ""]
            if exact and "error" not in exact:
                vs = [f"{100 * (r[k] / exact[k] - 1):+.2f} %" for k in ("range", "sill")]
                if r.get("se"):
                    vs = [f"{v} ({abs(r[k] - exact[k]) / r['se'][k]:.1f} SE)" for v, k in zip(vs, ("range", "sill"))]
            ratio = r["wall_s"] / ours["wall_s"] if "error" not in ours else float("nan")
            print(f"{n:9,d} {label:18s} {r['ev_s']:8.2f} {r['fit_s']:7.2f} {r['rss_mb']:6.0f} {r['range']:9.1f} "
                  f"{r['sill']:7.4f} {vs[0]:>15s} {vs[1]:>14s} {ratio:9.1f}  {r['threads']}")
            if r.get("se"):
                print(f"{'':9s} {'':18s} standard errors from pair sampling: range {r['se']['range']:.1f} m, "
                      f"sill {r['se']['sill']:.4f} ({r['se']['batches']} batches)")
    print("table s / fit s: experimental variogram and fit; x vs ours: total time / ours; 'vs exact': fitted value")
    print("against the all-pairs table's fit (in standard errors of the sampled estimate where it has them).")
    print(f"Above --exact-max ({exact_max:,}) samples neither our all-pairs table nor gstat's (also all pairs) is run.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["ours", "plain", "pykrige", "gstat", "vario", "vario_gstat"])
    ap.add_argument("--case", default=None)
    ap.add_argument("--mode", default="")
    ap.add_argument("--out", default=None)
    ap.add_argument("--cases", default="abcd")
    ap.add_argument("--threads", type=int, default=1,
                    help="thread budget of every contender (BLAS/OpenMP threads; ours: its worker threads)")
    ap.add_argument("--anchor-cells", type=int, default=None,
                    help="cap the cells an anchor krigs (whole rows); its time is extrapolated per cell")
    ap.add_argument("--skip-gstat", action="store_true")
    ap.add_argument("--skip-pykrige", action="store_true")
    ap.add_argument("--skip-variogram", action="store_true")
    ap.add_argument("--exact-max", type=int, default=50_000,
                    help="largest sample count at which our exact all-pairs variogram is also run")
    ap.add_argument("--quick", action="store_true",
                    help="the reduced form (about a minute): case q and the variogram at 5,000 samples")
    args = ap.parse_args()
    if args.worker:
        return run_worker(args)
    if args.quick:
        args.cases = "q"

    out = Path(tempfile.mkdtemp(prefix="bench_kriging_"))
    have_gstat = not args.skip_gstat and gstat_available()
    try:
        import pykrige

        have_pykrige = not args.skip_pykrige
        pykrige_version = pykrige.__version__
    except ImportError:
        have_pykrige, pykrige_version = False, "not installed"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; numpy {np.__version__}; PyKrige {pykrige_version}; gstat "
          f"{'yes' if have_gstat else 'skipped'}; thread budget of every contender: {args.threads}")
    rows, notes, threads_used = [], [], {}
    for key in args.cases:
        spec = CASES[key]
        print(f"running {spec['label']} ...", flush=True)
        ours = spawn("ours", key, out, threads=args.threads)
        plain = spawn("plain", key, out, threads=args.threads)
        if "error" in ours:
            rows.append((spec["label"], ours, {}, {}, float("nan")))
            notes.append(f"{key}: ours failed: {ours['error']}")
            continue
        threads_used.setdefault("ours", ours["threads"])
        o = np.load(out / f"ours_{key}.npy")
        p = np.load(out / f"plain_{key}.npy")
        pick = p[0].astype(int)
        d_plain = max(max_rel(o[0, pick], p[1]), max_rel(o[1, pick], p[2]))
        anchors = {}
        for name, have in (("pykrige", have_pykrige), ("gstat", have_gstat)):
            if not have:
                continue
            cells = args.anchor_cells or spec.get("anchor_cells")
            if name == "pykrige" and spec["n"] > 20_000:
                # PyKrige builds the dense (n+1)^2 matrix even for n_closest_points
                need = (spec["n"] + 1) ** 2 * 8 / 2**30
                anchors[name] = {"error": f"not run: PyKrige allocates a dense {spec['n'] + 1}^2 matrix "
                                          f"({need:.0f} GiB) even with n_closest_points"}
                continue
            res = spawn(name, key, out, cells, threads=args.threads)
            if "error" not in res:
                threads_used.setdefault(name, res["threads"])
                a = np.load(out / f"{name}_{key}.npy")
                res["diff"] = max(max_rel(a[0], o[0, :a.shape[1]]), max_rel(a[1], o[1, :a.shape[1]]))
                res["per_cell_us"] = res["wall_s"] / res["cells"] * 1e6
                res["full_s"] = res["per_cell_us"] * ours["cells"] / 1e6
                if res["cells"] < ours["cells"]:
                    notes.append(f"{key}: {name} ran {res['cells']:,} of {ours['cells']:,} cells; "
                                 "its time is extrapolated per cell")
            anchors[name] = res
        rows.append((spec["label"], ours, anchors, plain, d_plain))

    print()
    head = (f"{'case':38s} {'ours s':>8s} {'ours MB':>8s} {'systems':>9s} {'vs plain':>9s} | "
            f"{'PyKrige C s':>11s} {'MB':>6s} {'x':>6s} {'diff':>8s} | {'gstat s':>8s} {'MB':>6s} {'x':>6s} "
            f"{'diff':>8s}")
    print(head)
    print("-" * len(head))
    for label, ours, anchors, _, d_plain in rows:
        if "error" in ours:
            print(f"{label:38s} failed")
            continue
        line = (f"{label:38s} {ours['wall_s']:8.2f} {ours['rss_mb']:8.0f} {ours['systems']:9,d} "
                f"{d_plain:9.1e} |")
        for name in ("pykrige", "gstat"):
            a = anchors.get(name)
            if not a or "error" in a:
                line += f" {'n/a':>11s} {'':>6s} {'':>6s} {'':>8s} |" if name == "pykrige" else \
                    f" {'n/a':>8s} {'':>6s} {'':>6s} {'':>8s}"
                if a:
                    notes.append(f"{label[:3]} {name}: {a['error']}")
                continue
            width = 11 if name == "pykrige" else 8
            est = "~" if a["cells"] < ours["cells"] else ""
            line += (f" {est + format(a['full_s'], '.2f'):>{width}s} {a['rss_mb']:6.0f} "
                     f"{a['full_s'] / ours['wall_s']:6.1f} {a['diff']:8.1e}")
            line += " |" if name == "pykrige" else ""
        print(line)
    print()
    print("ours s / MB: wall time of the kriging call and peak RSS of its process; systems: distinct kriging")
    print("systems factorised; vs plain: max relative difference (prediction, variance) to solving each cell's")
    print("variogram-form system on its own by LU (20,000 random cells; 2,000 for the global case);")
    print("x: anchor time / our time, same thread budget;")
    print("diff: max relative difference of the anchor's prediction/variance to ours on the same cells;")
    print("~: anchor time extrapolated per cell from a capped run.")
    for name, used in threads_used.items():
        print(f"threads used by {name}: {used}")
    for n in notes:
        print("note:", n)
    if not args.skip_variogram:
        vario_table(VARIO_QUICK if args.quick else VARIO_SIZES, out, args.threads, args.exact_max, have_gstat)
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
